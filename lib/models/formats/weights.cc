#include "lib/models/formats/weights.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "ATen/ATen.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "modelpool/base/logging.h"

namespace modelpool {
namespace {

absl::StatusOr<at::ScalarType> TorchTypeOf(SafetensorsDType dtype, absl::string_view name) {
  switch (dtype) {
    case SafetensorsDType::kF32:
      return at::kFloat;
    case SafetensorsDType::kF16:
      return at::kHalf;
    case SafetensorsDType::kBF16:
      return at::kBFloat16;
    case SafetensorsDType::kF64:
      return at::kDouble;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", name, " is ", SafetensorsDTypeName(dtype),
                       "; expected a float type (F32, F16, BF16 or F64)"));
  }
}

}  // namespace

absl::Status CheckTensor(const SafetensorsCheckpoint& checkpoint, absl::string_view name,
                         const std::vector<int64_t>& shape) {
  const SafetensorsCheckpoint::Entry entry = checkpoint.Find(name);
  if (entry.tensor == nullptr) {
    return absl::NotFoundError(absl::StrCat("the checkpoint has no tensor ", name));
  }
  if (!shape.empty() && entry.tensor->shape != shape) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has shape [", absl::StrJoin(entry.tensor->shape, ", "),
                     "], expected [", absl::StrJoin(shape, ", "), "]"));
  }
  return TorchTypeOf(entry.tensor->dtype, name).status();
}

absl::StatusOr<at::Tensor> ReadTensor(const SafetensorsCheckpoint& checkpoint,
                                      absl::string_view name, at::ScalarType dtype,
                                      c10::Device device, const std::vector<int64_t>& shape) {
  if (absl::Status valid = CheckTensor(checkpoint, name, shape); !valid.ok()) return valid;
  const SafetensorsCheckpoint::Entry entry = checkpoint.Find(name);
  const at::ScalarType stored = *TorchTypeOf(entry.tensor->dtype, name);
  const absl::Span<const uint8_t> bytes = entry.file->Data(*entry.tensor);
  // The mapping is read-only and the data may be unaligned: copy it into a tensor of our own
  // before any kernel reads it.
  at::Tensor host = at::empty(entry.tensor->shape, at::TensorOptions().dtype(stored));
  if (!bytes.empty()) std::memcpy(host.data_ptr(), bytes.data(), bytes.size());
  return host.to(device, dtype);
}

void WarnOfUnusedTensors(const std::string& name, const std::vector<std::string>& unused) {
  if (unused.empty()) return;
  constexpr size_t kShown = 8;
  const size_t shown = std::min(unused.size(), kShown);
  std::string list = absl::StrJoin(unused.begin(), unused.begin() + shown, ", ");
  if (unused.size() > shown) absl::StrAppend(&list, " and ", unused.size() - shown, " more");
  Log(LogSeverity::kWarning, absl::StrCat(name, ": ", unused.size(),
                                          " tensors of the weights are not used (does config.json "
                                          "say fewer layers than the weights hold?): ",
                                          list));
}

}  // namespace modelpool
