#include "lib/models/flash_attention.h"

#include <optional>

#include "ATen/ATen.h"
#include "lib/models/half_precision.h"
#include "torch/version.h"

#ifndef TORCH_VERSION_MAJOR
#error "torch/version.h must define TORCH_VERSION_MAJOR: the PyTorch 2 kernels are chosen by it"
#endif

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/_flash_attention_forward.h>
#endif
#ifdef MODELPOOL_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace modelpool {

bool IsAmpereOrLater(c10::Device device) {
#ifdef MODELPOOL_TORCH_CUDA
  if (!device.is_cuda()) return false;
  const cudaDeviceProp* properties = device.has_index()
                                         ? at::cuda::getDeviceProperties(device.index())
                                         : at::cuda::getCurrentDeviceProperties();
  return properties->major >= 8;
#else
  return false;
#endif
}

bool CanFlashAttention(c10::Device device, c10::ScalarType dtype, int64_t head_dim) {
#if TORCH_VERSION_MAJOR >= 2
  return IsHalfPrecision(dtype) && head_dim % 8 == 0 && head_dim <= 256 && IsAmpereOrLater(device);
#else
  return false;
#endif
}

at::Tensor FlashAttention(const at::Tensor& queries, const at::Tensor& keys,
                          const at::Tensor& values, const at::Tensor& query_starts,
                          int64_t max_queries, const at::Tensor& key_starts, int64_t max_keys,
                          double scale, const at::Tensor& keys_used) {
#if TORCH_VERSION_MAJOR >= 2
  std::optional<at::Tensor> used;
  if (keys_used.defined()) used = keys_used;
  return std::get<0>(at::_flash_attention_forward(
      queries, keys, values, query_starts, key_starts, max_queries, max_keys, /*dropout_p=*/0.0,
      /*is_causal=*/false, /*return_debug_mask=*/false, scale,
      /*window_size_left=*/std::nullopt, /*window_size_right=*/std::nullopt, used));
#else
  TORCH_CHECK(false, "flash attention needs PyTorch 2");
#endif
}

at::Tensor EvenStarts(int64_t count, int64_t step, c10::Device device) {
  return at::arange(count + 1, at::TensorOptions().dtype(at::kInt).device(device)).mul_(step);
}

}  // namespace modelpool
