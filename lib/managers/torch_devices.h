#ifndef MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_
#define MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_

#include "modelpool/base/device.h"

namespace modelpool {

// Hands the blocks libtorch's caching allocator keeps on `device` back to the driver, so that a
// reading of free memory shows what unloaded instances released. Nothing on the CPU.
void ReleaseCachedTorchMemory(const Device& device);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MANAGERS_TORCH_DEVICES_H_
