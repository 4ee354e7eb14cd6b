#include "lib/models/formats/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/base/file.h"
#include "lib/base/saturating.h"
#include "lib/models/formats/json_file.h"
#include "modelpool/base/status.h"
#include "nlohmann/json.hpp"

namespace modelpool {
namespace {

using Json = nlohmann::json;

// Headers are small (a few hundred bytes per tensor); a larger one is corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

struct DTypeInfo {
  SafetensorsDType dtype;
  const char* name;
  int size;
};
constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::kBool, "BOOL", 1},      {SafetensorsDType::kU8, "U8", 1},
    {SafetensorsDType::kI8, "I8", 1},          {SafetensorsDType::kF8E4M3, "F8_E4M3", 1},
    {SafetensorsDType::kF8E5M2, "F8_E5M2", 1}, {SafetensorsDType::kI16, "I16", 2},
    {SafetensorsDType::kU16, "U16", 2},        {SafetensorsDType::kF16, "F16", 2},
    {SafetensorsDType::kBF16, "BF16", 2},      {SafetensorsDType::kI32, "I32", 4},
    {SafetensorsDType::kU32, "U32", 4},        {SafetensorsDType::kF32, "F32", 4},
    {SafetensorsDType::kF64, "F64", 8},        {SafetensorsDType::kI64, "I64", 8},
    {SafetensorsDType::kU64, "U64", 8},
};

const DTypeInfo& InfoOf(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];
}

bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos;
}

}  // namespace

absl::string_view SafetensorsDTypeName(SafetensorsDType dtype) { return InfoOf(dtype).name; }
int SafetensorsDTypeSize(SafetensorsDType dtype) { return InfoOf(dtype).size; }

int64_t SafetensorsTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  // A FIFO, a device or a folder is refused without blocking; see OpenRegularFile.
  MODELPOOL_ASSIGN_OR_RETURN(const RegularFile opened, OpenRegularFile(path));
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  const size_t size = static_cast<size_t>(opened.size);
  if (size > 0) {
    void* mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, opened.fd.get(), 0);
    if (mapping == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot map ", path, ": ", std::strerror(errno)));
    }
    file->mapping_ = mapping;
    file->mapping_size_ = size;
  }
  MODELPOOL_RETURN_IF_ERROR(
      file->ParseHeader(absl::MakeConstSpan(static_cast<const uint8_t*>(file->mapping_), size)));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(
    absl::Span<const uint8_t> bytes, std::string source) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = std::move(source);
  MODELPOOL_RETURN_IF_ERROR(file->ParseHeader(bytes));
  return file;
}

absl::Status SafetensorsFile::ParseHeader(absl::Span<const uint8_t> bytes) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", parts...));
  };
  if (bytes.size() < 8) {
    return invalid("too short for a safetensors file (", bytes.size(), " bytes)");
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes || header_size > bytes.size() - 8) {
    return invalid("header claims ", header_size, " bytes but the file has ", bytes.size() - 8,
                   " after the size field (truncated or not a safetensors file)");
  }
  const char* header = reinterpret_cast<const char*>(bytes.data() + 8);
  Json json = Json::parse(header, header + header_size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return invalid("header is not valid JSON");
  if (!json.is_object()) return invalid("header is not a JSON object");
  data_ = bytes.data() + 8 + header_size;
  data_size_ = bytes.size() - 8 - header_size;

  for (auto item = json.begin(); item != json.end(); ++item) {
    const std::string& name = item.key();  // not a structured binding: clang 14 lambdas
    const Json& entry = item.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return invalid("__metadata__ is not an object");
      for (auto& [key, value] : entry.items()) {
        if (!value.is_string()) return invalid("__metadata__ value of '", key, "' is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto&&... parts) { return invalid("tensor '", name, "': ", parts...); };
    if (!entry.is_object()) return bad("entry is not an object");
    SafetensorsTensor tensor;
    tensor.name = name;

    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) return bad("no dtype");
    const std::string dtype_name = dtype->get<std::string>();
    const DTypeInfo* info = nullptr;
    for (const DTypeInfo& candidate : kDTypes) {
      if (dtype_name == candidate.name) info = &candidate;
    }
    if (info == nullptr) return bad("unknown dtype '", dtype_name, "'");
    tensor.dtype = info->dtype;

    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) return bad("no shape");
    // Byte size, checked for overflow as it grows.
    uint64_t bytes_needed = static_cast<uint64_t>(info->size);
    bool overflow = false;
    for (const Json& dim : *shape) {
      if (!dim.is_number_unsigned()) return bad("shape has a negative or non-integer size");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX)) return bad("shape size ", d, " is too large");
      if (d != 0 && bytes_needed > UINT64_MAX / d) overflow = true;
      bytes_needed = overflow ? 0 : bytes_needed * d;
      tensor.shape.push_back(static_cast<int64_t>(d));
    }
    if (overflow) return bad("shape is too large");

    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return bad("data_offsets is not a pair of byte offsets");
    }
    tensor.begin = (*offsets)[0].get<uint64_t>();
    tensor.end = (*offsets)[1].get<uint64_t>();
    if (tensor.begin > tensor.end) return bad("data_offsets end before they begin");
    if (tensor.end > data_size_) {
      return bad("data ends at byte ", tensor.end, " but the data section has ", data_size_,
                 " (the file is truncated)");
    }
    if (tensor.end - tensor.begin != bytes_needed) {
      return bad("shape and dtype need ", bytes_needed, " bytes but data_offsets span ",
                 tensor.end - tensor.begin);
    }
    tensors_.emplace(name, std::move(tensor));
  }

  // Ranges must not overlap: sorted by start, each begins at or after the previous end.
  std::vector<const SafetensorsTensor*> by_start;
  for (const auto& [name, tensor] : tensors_) by_start.push_back(&tensor);
  std::sort(by_start.begin(), by_start.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_start.size(); ++i) {
    const SafetensorsTensor& previous = *by_start[i - 1];
    const SafetensorsTensor& current = *by_start[i];
    if (current.begin < previous.end && current.begin != current.end &&
        previous.begin != previous.end) {
      return invalid("tensors '", previous.name, "' and '", current.name, "' overlap");
    }
  }
  return absl::OkStatus();
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Span<const uint8_t> SafetensorsFile::Data(const SafetensorsTensor& tensor) const {
  return absl::MakeConstSpan(data_ + tensor.begin, tensor.end - tensor.begin);
}

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  auto checkpoint = std::unique_ptr<SafetensorsCheckpoint>(new SafetensorsCheckpoint());
  std::error_code ec;
  // A link counts as there even when it leads nowhere: opening it says so.
  const auto present = [&](const fs::path& path) {
    return fs::exists(path, ec) || fs::is_symlink(path, ec);
  };
  if (present(dir / "model.safetensors")) {
    MODELPOOL_ASSIGN_OR_RETURN(auto file,
                               SafetensorsFile::Open((dir / "model.safetensors").string()));
    checkpoint->shards_.push_back(std::move(file));
    return checkpoint;
  }
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (present(index_path)) {
    MODELPOOL_ASSIGN_OR_RETURN(const JsonFile index_file, JsonFile::Read(index_path.string()));
    const Json& index = index_file.json();
    auto bad_index = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": ", why));
    };
    const auto weight_map = index.find("weight_map");
    if (weight_map == index.end() || !weight_map->is_object() || weight_map->empty()) {
      return bad_index("no weight_map");
    }
    std::map<std::string, std::vector<std::string>> tensors_by_shard;
    for (auto& [tensor, shard] : weight_map->items()) {
      if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
        return bad_index(absl::StrCat("tensor '", tensor, "' maps to a bad shard name"));
      }
      tensors_by_shard[shard.get<std::string>()].push_back(tensor);
    }
    for (const auto& [shard, tensors] : tensors_by_shard) {
      MODELPOOL_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / shard).string()));
      for (const std::string& tensor : tensors) {
        if (file->Find(tensor) == nullptr) {
          return bad_index(absl::StrCat("lists '", tensor, "' in ", shard, ", which lacks it"));
        }
      }
      checkpoint->shards_.push_back(std::move(file));
    }
    return checkpoint;
  }
  for (const char* pickled : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    if (fs::exists(dir / pickled, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          model_dir, " has only ", pickled,
          ", a pickle: loading one can run arbitrary code, so it is refused. Convert it once "
          "with `safetensors` (e.g. model.save_pretrained(dir, safe_serialization=True)) and "
          "use model.safetensors."));
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no model.safetensors or model.safetensors.index.json in ", model_dir));
}

SafetensorsCheckpoint::Entry SafetensorsCheckpoint::Find(absl::string_view name) const {
  for (const auto& shard : shards_) {
    if (const SafetensorsTensor* tensor = shard->Find(name)) return {shard.get(), tensor};
  }
  return {};
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> names;
  for (const auto& shard : shards_) {
    for (const auto& [name, tensor] : shard->tensors()) names.push_back(name);
  }
  return names;
}

int64_t SafetensorsCheckpoint::NumBlocks(absl::string_view prefix) const {
  int64_t blocks = 0;
  for (const auto& shard : shards_) {
    for (const auto& [name, tensor] : shard->tensors()) {
      if (!absl::StartsWith(name, prefix)) continue;
      const absl::string_view rest = absl::string_view(name).substr(prefix.size());
      const size_t dot = rest.find('.');
      int64_t index = 0;
      if (dot == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dot), &index) ||
          index < 0) {
        continue;
      }
      blocks = std::max(blocks, SaturatingAdd(index, 1));
    }
  }
  return blocks;
}

uint64_t SafetensorsCheckpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) {
    for (const auto& [name, tensor] : shard->tensors()) total += tensor.end - tensor.begin;
  }
  return total;
}

}  // namespace modelpool
