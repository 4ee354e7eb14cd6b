#include "lib/devices/footprint_store.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace modelpool::devices_internal {
namespace {

constexpr const char* kFormat = "modelpool-footprints";
// A file of measurements is a few hundred bytes per model; anything near this is not one.
constexpr std::streamoff kMaxFileBytes = 4 << 20;
constexpr int64_t kMaxBytes = int64_t{1} << 50;

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<std::string> StringField(const std::string& path, const nlohmann::json& entry,
                                        size_t index, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end() || !it->is_string()) {
    return Bad(path, absl::StrCat("footprints[", index, "].", key, " is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<int64_t> BytesField(const std::string& path, const nlohmann::json& entry,
                                   size_t index, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxBytes) {
    return Bad(path, absl::StrCat("footprints[", index, "].", key,
                                  " is not a whole number of bytes from 0 to 2^50"));
  }
  return it->get<int64_t>();
}

}  // namespace

std::string FootprintKey(const std::string& model, const std::string& variant,
                         const std::string& device_kind) {
  return absl::StrCat(model, "|", variant, "|", device_kind);
}

absl::StatusOr<MeasuredFootprints> ReadFootprints(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MeasuredFootprints{};
  in.seekg(0, std::ios::end);
  if (in.tellg() > kMaxFileBytes) return Bad(path, "larger than 4 MiB: not a footprint file");
  in.seekg(0, std::ios::beg);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json =
      nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return Bad(path, "not a JSON object");
  auto format = json.find("format");
  if (format == json.end() || *format != kFormat) {
    return Bad(path, absl::StrCat("format is not \"", kFormat, "\""));
  }
  auto list = json.find("footprints");
  if (list == json.end() || !list->is_array()) return Bad(path, "footprints is not a list");
  MeasuredFootprints footprints;
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& entry = (*list)[i];
    if (!entry.is_object()) return Bad(path, absl::StrCat("footprints[", i, "] is not an object"));
    absl::StatusOr<std::string> model = StringField(path, entry, i, "model");
    absl::StatusOr<std::string> variant = StringField(path, entry, i, "variant");
    absl::StatusOr<std::string> device = StringField(path, entry, i, "device");
    absl::StatusOr<int64_t> first = BytesField(path, entry, i, "first_instance_bytes");
    absl::StatusOr<int64_t> instance = BytesField(path, entry, i, "instance_bytes");
    for (const absl::Status& status :
         {model.status(), variant.status(), device.status(), first.status(), instance.status()}) {
      if (!status.ok()) return status;
    }
    if (*device != "cuda" && *device != "cpu") {
      return Bad(path, absl::StrCat("footprints[", i, "].device is \"", *device,
                                    "\", not \"cuda\" or \"cpu\""));
    }
    footprints[FootprintKey(*model, *variant, *device)] = {*model, *variant, *device, *first,
                                                           *instance};
  }
  return footprints;
}

absl::Status WriteFootprints(const std::string& path, const MeasuredFootprints& footprints) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [key, measured] : footprints) {
    list.push_back({{"model", measured.model},
                    {"variant", measured.variant},
                    {"device", measured.device_kind},
                    {"first_instance_bytes", measured.first_instance_bytes},
                    {"instance_bytes", measured.instance_bytes}});
  }
  const nlohmann::json json = {{"format", kFormat}, {"footprints", list}};
  const std::string temporary = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << json.dump(2) << "\n";
    if (!out.flush()) {
      std::remove(temporary.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", temporary));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace modelpool::devices_internal
