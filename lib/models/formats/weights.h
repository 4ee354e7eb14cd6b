#ifndef MODELPOOL_LIB_MODELS_FORMATS_WEIGHTS_H_
#define MODELPOOL_LIB_MODELS_FORMATS_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ATen/Tensor.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/formats/safetensors.h"

namespace modelpool {

// CheckTensor()
//
// Whether `checkpoint` holds a float tensor called `name` of `shape` (any shape when empty):
// `NotFound` when it has no such tensor; `InvalidArgument`, naming the tensor, for a shape
// mismatch or a stored type that is not a float (F32, F16, BF16, F64).
absl::Status CheckTensor(const SafetensorsCheckpoint& checkpoint, absl::string_view name,
                         const std::vector<int64_t>& shape = {});

// ReadTensor()
//
// Copies the tensor called `name` out of `checkpoint` into a new tensor of `dtype` on
// `device`, after `CheckTensor()`.
absl::StatusOr<at::Tensor> ReadTensor(const SafetensorsCheckpoint& checkpoint,
                                      absl::string_view name, at::ScalarType dtype,
                                      c10::Device device, const std::vector<int64_t>& shape = {});

// Logs a warning that names `unused`, tensors of a checkpoint that the model `name` leaves out,
// as transformers warns of weights "not used when initializing": usually a config.json that
// says fewer layers than the weights hold. Nothing when `unused` is empty.
void WarnOfUnusedTensors(const std::string& name, const std::vector<std::string>& unused);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FORMATS_WEIGHTS_H_
