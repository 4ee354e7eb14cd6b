#ifndef MODELPOOL_LIB_MODELS_GENERATION_STATIC_STEPS_H_
#define MODELPOOL_LIB_MODELS_GENERATION_STATIC_STEPS_H_

#include <cstdint>
#include <memory>

#include "ATen/Tensor.h"
#include "absl/status/statusor.h"
#include "lib/models/generation/generation.h"

namespace modelpool {

// How a decoder's steps run: one operation at a time as the position asks (`kEager`), at a
// position held on the device with shapes that never change (`kStatic`), or that captured
// once per batch in a CUDA graph and replayed (`kGraph`, CUDA only).
enum class DecoderSteps { kEager, kStatic, kGraph };

// The steps for a batch on `device` with `max_new_tokens` new tokens: `MODELPOOL_DECODER_STEPS`
// (eager, static or graph) when set, else graph on CUDA and eager elsewhere; eager where
// `decoder` has no static steps for that many positions. `InvalidArgument` naming the variable
// for any other value.
absl::StatusOr<DecoderSteps> ChooseDecoderSteps(const StepDecoder& decoder, c10::Device device,
                                                int64_t max_new_tokens);

// StaticSteps
//
// Runs `decoder`'s static steps for one batch of `rows` rows (Note [Decoder steps in a CUDA
// graph]). The logits a step returns are overwritten by the next step. Not thread-safe.
class StaticSteps final : public StepDecoder {
 public:
  StaticSteps(StepDecoder& decoder, int64_t rows, c10::Device device, bool graph);
  ~StaticSteps() override;

  at::Tensor Step(const at::Tensor& tokens, int64_t position) override;
  void Reorder(const at::Tensor& parents, int64_t length) override;

 private:
  struct Graph;

  StepDecoder& decoder_;
  const bool graph_wanted_;
  // The step's inputs at fixed addresses, written before each step.
  at::Tensor tokens_;    // int64 [rows]
  at::Tensor position_;  // int64 [1]
  std::unique_ptr<Graph> graph_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_STATIC_STEPS_H_
