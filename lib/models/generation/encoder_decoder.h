#ifndef MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_H_
#define MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_H_

#include <array>
#include <cstdint>

#include "ATen/Tensor.h"
#include "c10/core/Device.h"
#include "lib/models/generation/generation.h"
#include "lib/models/summarizer_folder.h"

namespace modelpool {

// EncoderDecoder
//
// One instance of an encoder-decoder architecture on one device: the weights it shares with
// the model's other instances there, and caches of its own, allocated for its limits. `Encode`
// runs the encoder; `StartDecoding` takes its output for one batch; `Step` and `Reorder` (the
// `StepDecoder` interface) then run the decoder one token at a time. Not thread-safe: the
// caches belong to the batch being decoded. Throws `c10::Error` as ATen does.
class EncoderDecoder : public StepDecoder {
 public:
  // The encoder's last hidden state, [batch, length, hidden] in the model's dtype, for
  // `input_ids` (int64 [batch, length], right-padded) where `attention_mask` (bool, same
  // shape) is true.
  virtual at::Tensor Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) = 0;

  // Prepares decoding of the batch whose encoder output is `encoder_hidden`, with `num_beams`
  // rows per text (what the cross-attention needs is computed once here). Shapes must be
  // within the limits.
  virtual void StartDecoding(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                             int64_t num_beams) = 0;

  // What a static step of the batch being decoded depends on beyond the instance (see
  // DecoderCaches::StepShape): batches of one shape can replay one step's CUDA graph.
  virtual std::array<int64_t, 3> StepShape() const = 0;

  virtual const SummarizerLimits& limits() const = 0;
  virtual c10::Device device() const = 0;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_GENERATION_ENCODER_DECODER_H_
