#ifndef MODELPOOL_LIB_MODELS_GENERATION_GREEDY_STEP_ON_DEVICE_H_
#define MODELPOOL_LIB_MODELS_GENERATION_GREEDY_STEP_ON_DEVICE_H_

#include <cstdint>

#include "ATen/Tensor.h"
#include "lib/models/generation/generation.h"

namespace modelpool {

// The state greedy search carries from step to step, on the device.
struct GreedyState {
  at::Tensor sequences;   // int64 [batch, max_new_tokens + 1]
  at::Tensor lengths;     // int64 [batch]
  at::Tensor unfinished;  // bool [batch]
  at::Tensor keys;        // int64 [batch] scratch of the kernels, zero between steps
};

// GreedyStepOnDevice()
//
// One greedy step after the decoder gave `scores` (float32 [batch, vocab]): the n-gram and
// minimum-length bans, the forced tokens (`forced`, int64, or undefined), the choice, and the
// updates of `state` for position `length`, in two kernels of our own (Note [Greedy step in two
// kernels]) instead of generation.cc's tensor operations, with the same result. `scores` may be
// overwritten. Returns false, running nothing, where they do not run: not CUDA on Ampere or
// later, the kernels not built, MODELPOOL_FUSED_KERNELS=0, or operands they do not take; the caller
// then takes the tensor operations.
bool GreedyStepOnDevice(at::Tensor& scores, GreedyState& state, int64_t length,
                        const at::Tensor& eos, const at::Tensor& forced, const SearchOptions& o);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_GREEDY_STEP_ON_DEVICE_H_
