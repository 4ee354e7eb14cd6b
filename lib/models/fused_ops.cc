#include "lib/models/fused_ops.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "ATen/ATen.h"
#include "lib/models/flash_attention.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernel_switches.h"
#include "torch/version.h"

#ifndef TORCH_VERSION_MAJOR
#error "torch/version.h must define TORCH_VERSION_MAJOR: the PyTorch 2 kernels are chosen by it"
#endif

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/_addmm_activation.h>
#endif
#ifdef MODELPOOL_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "lib/models/kernels/packed_attention.h"
#include "lib/models/kernels/per_device_answer.h"
#include "lib/models/kernels/residual_layer_norm.h"
#include "lib/models/kernels/small_batch_linear.h"
#endif

namespace modelpool {

bool CanFuseEpilogues(c10::Device device, c10::ScalarType dtype, int64_t width) {
#if defined(MODELPOOL_CUDA_KERNELS) && TORCH_VERSION_MAJOR >= 2
  return IsHalfPrecision(dtype) && ProcessKernelSwitches().fused_kernels &&
         kernels::CanResidualLayerNorm(width) && IsAmpereOrLater(device);
#else
  return false;
#endif
}

at::Tensor LinearActivation(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            bool gelu) {
#if TORCH_VERSION_MAJOR >= 2
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(0);
  return at::_addmm_activation(bias, x.reshape({-1, x.size(-1)}), weight.t(), /*beta=*/1,
                               /*alpha=*/1, gelu)
      .view(shape);
#else
  TORCH_CHECK(false, "fused epilogues need PyTorch 2");
#endif
}

at::Tensor AddLayerNorm(at::Tensor y, const at::Tensor& residual, const at::Tensor& weight,
                        const at::Tensor& bias, double eps) {
#ifdef MODELPOOL_CUDA_KERNELS
  TORCH_CHECK(y.is_contiguous() && residual.is_contiguous() && y.sizes() == residual.sizes(),
              "the residual LayerNorm kernel takes two contiguous tensors of one shape");
  const int64_t width = y.size(-1);
  const int error = kernels::ResidualLayerNorm(
      HalfTypeOf(y), y.const_data_ptr(), residual.const_data_ptr(), weight.const_data_ptr(),
      bias.const_data_ptr(), y.data_ptr(), y.numel() / width, width, static_cast<float>(eps),
      at::cuda::getCurrentCUDAStream().stream(), ProcessKernelSwitches().overlapped_launches);
  TORCH_CHECK(error == 0, "the residual LayerNorm kernel failed to launch: CUDA error ", error);
  return y;
#else
  TORCH_CHECK(false, "the residual LayerNorm kernel was not built");
#endif
}

std::pair<at::Tensor, at::Tensor> AddRmsNorm(at::Tensor y, const at::Tensor& residual,
                                             const at::Tensor& weight, double eps) {
#ifdef MODELPOOL_CUDA_KERNELS
  TORCH_CHECK(y.is_contiguous() && residual.is_contiguous() && y.sizes() == residual.sizes(),
              "the residual RMSNorm kernel takes two contiguous tensors of one shape");
  const int64_t width = y.size(-1);
  at::Tensor normed = at::empty_like(y);
  const int error = kernels::ResidualRmsNorm(
      HalfTypeOf(y), y.const_data_ptr(), residual.const_data_ptr(), weight.const_data_ptr(),
      y.data_ptr(), normed.data_ptr(), y.numel() / width, width, static_cast<float>(eps),
      at::cuda::getCurrentCUDAStream().stream(), ProcessKernelSwitches().overlapped_launches);
  TORCH_CHECK(error == 0, "the residual RMSNorm kernel failed to launch: CUDA error ", error);
  return {std::move(y), std::move(normed)};
#else
  TORCH_CHECK(false, "the residual RMSNorm kernel was not built");
#endif
}

#ifdef MODELPOOL_CUDA_KERNELS
namespace {

bool RunsOn(int device) {
  static kernels::PerDeviceAnswer runs_on(kernels::SmallBatchLinearRunsOn);
  return runs_on.For(device);
}

}  // namespace
#endif

std::optional<at::Tensor> SmallBatchLinear(const at::Tensor& x, const at::Tensor& weight,
                                           const at::Tensor& bias,
                                           kernels::SmallBatchActivation activation) {
#ifdef MODELPOOL_CUDA_KERNELS
  const auto aligned = [](const at::Tensor& t) {
    return reinterpret_cast<uintptr_t>(t.const_data_ptr()) % 16 == 0;
  };
  const c10::ScalarType dtype = x.scalar_type();
  if (x.dim() < 1 || weight.dim() != 2 || !x.is_cuda() || !IsHalfPrecision(dtype) ||
      weight.scalar_type() != dtype || weight.device() != x.device() || !x.is_contiguous() ||
      !weight.is_contiguous() || x.numel() == 0 || x.size(-1) != weight.size(1) || !aligned(x) ||
      !aligned(weight)) {
    return std::nullopt;
  }
  if (bias.defined() &&
      (bias.dim() != 1 || bias.size(0) != weight.size(0) || bias.scalar_type() != dtype ||
       bias.device() != x.device() || !bias.is_contiguous())) {
    return std::nullopt;
  }
  const int64_t in = x.size(-1);
  const int64_t rows = x.numel() / in;
  const int64_t out = weight.size(0);
  if (!kernels::CanSmallBatchLinear(rows, in, out) || !RunsOn(x.device().index())) {
    return std::nullopt;
  }
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  at::Tensor y = at::empty(shape, x.options());
  const int error =
      kernels::SmallBatchLinear(HalfTypeOf(x), x.const_data_ptr(), weight.const_data_ptr(),
                                bias.defined() ? bias.const_data_ptr() : nullptr, y.data_ptr(),
                                rows, in, out, at::cuda::getCurrentCUDAStream().stream(),
                                ProcessKernelSwitches().overlapped_launches, activation);
  TORCH_CHECK(error == 0, "the small-batch linear kernel failed to launch: CUDA error ", error);
  return y;
#else
  (void)x, (void)weight, (void)bias, (void)activation;
  return std::nullopt;
#endif
}

std::optional<at::Tensor> SmallBatchLinearWhereFaster(const at::Tensor& x, const at::Tensor& weight,
                                                      const at::Tensor& bias,
                                                      kernels::SmallBatchActivation activation) {
  constexpr int64_t kMostRows = 8;
  constexpr int64_t kMostWidening = 4;  // outputs per input, for one row
  if (x.dim() < 1 || weight.dim() != 2 || x.size(-1) == 0) return std::nullopt;
  const int64_t in = x.size(-1);
  const int64_t rows = x.numel() / in;
  const int64_t out = weight.size(0);
  const bool faster = rows <= kMostRows && (out <= in || (rows == 1 && out <= kMostWidening * in));
  if (!faster) return std::nullopt;
  return SmallBatchLinear(x, weight, bias, activation);
}

bool CanPackedSelfAttention(c10::Device device, c10::ScalarType dtype, int64_t heads,
                            int64_t head_dim) {
#ifdef MODELPOOL_CUDA_KERNELS
  static kernels::PerDeviceAnswer runs_on(kernels::PackedAttentionRunsOn);
  return device.is_cuda() && IsHalfPrecision(dtype) &&
         kernels::CanPackedAttention(heads, head_dim) && IsAmpereOrLater(device) &&
         runs_on.For(device.has_index() ? device.index() : at::cuda::current_device());
#else
  (void)device, (void)dtype, (void)heads, (void)head_dim;
  return false;
#endif
}

at::Tensor PackedSelfAttention(const at::Tensor& qkv, const at::Tensor& starts,
                               const at::Tensor& row_ids, int64_t heads, double scale) {
#ifdef MODELPOOL_CUDA_KERNELS
  const auto int32_on_device = [&](const at::Tensor& t) {
    return t.scalar_type() == at::kInt && t.is_contiguous() && t.device() == qkv.device();
  };
  TORCH_CHECK(heads > 0 && qkv.dim() == 2 && qkv.is_cuda() && IsHalfPrecision(qkv.scalar_type()) &&
                  qkv.is_contiguous() && qkv.size(1) % (3 * heads) == 0 &&
                  reinterpret_cast<uintptr_t>(qkv.const_data_ptr()) % 16 == 0 &&
                  int32_on_device(starts) && starts.numel() >= 2 && int32_on_device(row_ids) &&
                  row_ids.numel() == qkv.size(0),
              "the packed attention kernel takes contiguous, 16-byte aligned float16 or bfloat16 "
              "[tokens, 3 * hidden] projections on a GPU, and int32 row starts and row ids on "
              "their device");
  const int64_t hidden = qkv.size(1) / 3;
  at::Tensor out = at::empty({qkv.size(0), hidden}, qkv.options());
  const int error = kernels::PackedAttention(
      HalfTypeOf(qkv), qkv.const_data_ptr(), qkv.stride(0), starts.const_data_ptr<int32_t>(),
      row_ids.const_data_ptr<int32_t>(), qkv.size(0), heads, hidden / heads,
      static_cast<float>(scale), out.data_ptr(), at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error == 0, "the packed attention kernel failed to launch: CUDA error ", error);
  return out;
#else
  (void)qkv, (void)starts, (void)row_ids, (void)heads, (void)scale;
  TORCH_CHECK(false, "the packed attention kernel was not built");
#endif
}

}  // namespace modelpool
