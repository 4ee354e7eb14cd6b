#include "modelpool/base/dtype.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace modelpool {

absl::StatusOr<DType> ParseDType(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "float32" || lower == "fp32" || lower == "float") return DType::kFloat32;
  if (lower == "float16" || lower == "fp16" || lower == "half") return DType::kFloat16;
  if (lower == "bfloat16" || lower == "bf16") return DType::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a dtype: expected float32, float16 or bfloat16"));
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

}  // namespace modelpool
