#ifndef MODELPOOL_MODELS_TORCH_TYPES_H_
#define MODELPOOL_MODELS_TORCH_TYPES_H_

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"

namespace modelpool {

// libtorch's names for a `Device` and a `DType`, for custom managers that load libtorch or
// TorchScript models (see examples/custom_manager).
c10::Device ToTorchDevice(const Device& device);
c10::ScalarType ToTorchType(DType dtype);

}  // namespace modelpool

#endif  // MODELPOOL_MODELS_TORCH_TYPES_H_
