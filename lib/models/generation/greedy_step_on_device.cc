#include "lib/models/generation/greedy_step_on_device.h"

#ifdef MODELPOOL_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "ATen/ATen.h"
#include "lib/models/flash_attention.h"  // IsAmpereOrLater
#include "lib/models/kernel_switches.h"
#include "lib/models/kernels/greedy_pick.h"
#endif

namespace modelpool {

bool GreedyStepOnDevice(at::Tensor& scores, GreedyState& state, int64_t length,
                        const at::Tensor& eos, const at::Tensor& forced, const SearchOptions& o) {
#ifdef MODELPOOL_CUDA_KERNELS
  const auto on = [&](const at::Tensor& t, at::ScalarType type) {
    return t.device() == scores.device() && t.scalar_type() == type && t.is_contiguous();
  };
  // Built for Ampere and later (MODELPOOL_CUDA_ARCHITECTURES), as our other kernels.
  if (!scores.is_cuda() || !ProcessKernelSwitches().fused_kernels ||
      !IsAmpereOrLater(scores.device()) || scores.dim() != 2 || !on(scores, at::kFloat) ||
      !on(state.sequences, at::kLong) || !on(state.lengths, at::kLong) ||
      !on(state.unfinished, at::kBool) || !on(eos, at::kLong) ||
      (forced.defined() && !on(forced, at::kLong)) || state.sequences.size(0) != scores.size(0)) {
    return false;
  }
  if (!state.keys.defined()) state.keys = at::zeros({scores.size(0)}, state.lengths.options());
  kernels::GreedyPickArgs args{};
  args.scores = scores.data_ptr<float>();
  args.rows = scores.size(0);
  args.vocab = scores.size(1);
  args.sequences = state.sequences.data_ptr<int64_t>();
  args.width = state.sequences.size(1);
  args.length = length;
  args.lengths = state.lengths.data_ptr<int64_t>();
  args.unfinished = state.unfinished.data_ptr<bool>();
  args.eos = eos.data_ptr<int64_t>();
  args.eos_count = eos.numel();
  args.ban_eos = length - 1 < o.min_new_tokens;
  args.forced = forced.defined() ? forced.data_ptr<int64_t>() : nullptr;
  args.forced_count = forced.defined() ? forced.numel() : 0;
  args.no_repeat_ngram = o.no_repeat_ngram_size;
  args.pad = o.pad_token_id;
  args.keys = reinterpret_cast<uint64_t*>(state.keys.data_ptr<int64_t>());
  const int error = kernels::GreedyPick(args, at::cuda::getCurrentCUDAStream().stream(),
                                        ProcessKernelSwitches().overlapped_launches);
  if (error < 0) return false;  // arguments the kernels do not take: nothing ran
  TORCH_CHECK(error == 0, "the greedy step's kernels failed to launch: CUDA error ", error);
  return true;
#else
  (void)scores, (void)state, (void)length, (void)eos, (void)forced, (void)o;
  return false;
#endif
}

}  // namespace modelpool
