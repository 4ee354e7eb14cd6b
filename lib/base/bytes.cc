#include "modelpool/base/bytes.h"

#include "absl/strings/str_format.h"

namespace modelpool {

std::string FormatBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (int64_t{1} << 30) || bytes <= -(int64_t{1} << 30)) {
    return absl::StrFormat("%.2f GiB", b / (1 << 30));
  }
  return absl::StrFormat("%.2f MiB", b / (1 << 20));
}

}  // namespace modelpool
