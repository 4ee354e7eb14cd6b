#include "modelpool/base/device.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "modelpool/base/status.h"

namespace modelpool {

absl::StatusOr<Device> Device::Parse(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "cpu") return Cpu();
  if (lower == "cuda" || lower == "gpu") return Cuda(0);
  for (absl::string_view prefix : {"cuda:", "gpu:"}) {
    if (!absl::StartsWith(lower, prefix)) continue;
    int index = -1;
    if (absl::SimpleAtoi(absl::string_view(lower).substr(prefix.size()), &index) && index >= 0) {
      return Cuda(index);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a device: expected cpu, cuda or cuda:N"));
}

absl::StatusOr<std::vector<Device>> Device::ParseList(absl::string_view text) {
  std::vector<Device> devices;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    MODELPOOL_ASSIGN_OR_RETURN(Device device, Parse(item));
    for (const Device& seen : devices) {
      if (seen == device) {
        return absl::InvalidArgumentError(absl::StrCat(device.ToString(), " is listed twice"));
      }
    }
    devices.push_back(device);
  }
  return devices;
}

std::string Device::ToString() const {
  return is_cuda() ? absl::StrCat("cuda:", index) : std::string("cpu");
}

}  // namespace modelpool
