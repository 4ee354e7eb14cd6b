#ifndef MODELPOOL_BASE_DTYPE_H_
#define MODELPOOL_BASE_DTYPE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace modelpool {

// The floating-point type a model computes in.
enum class DType { kFloat32, kFloat16, kBFloat16 };

// Parses "float32"/"fp32", "float16"/"fp16"/"half", "bfloat16"/"bf16". `InvalidArgument` otherwise.
absl::StatusOr<DType> ParseDType(absl::string_view text);
// "float32", "float16" or "bfloat16".
absl::string_view DTypeName(DType dtype);

}  // namespace modelpool

#endif  // MODELPOOL_BASE_DTYPE_H_
