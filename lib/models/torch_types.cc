#include "modelpool/models/torch_types.h"

namespace modelpool {

c10::Device ToTorchDevice(const Device& device) {
  return device.is_cuda()
             ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device.index))
             : c10::Device(c10::DeviceType::CPU);
}

c10::ScalarType ToTorchType(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return c10::ScalarType::Half;
    case DType::kBFloat16:
      return c10::ScalarType::BFloat16;
    case DType::kFloat32:
      return c10::ScalarType::Float;
  }
  return c10::ScalarType::Float;
}

}  // namespace modelpool
