#ifndef MODELPOOL_LIB_MODELS_BART_BART_MODEL_H_
#define MODELPOOL_LIB_MODELS_BART_BART_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ATen/Tensor.h"
#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/bart/bart_config.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/generation/decoder_caches.h"
#include "lib/models/generation/encoder_decoder.h"
#include "lib/models/summarizer_folder.h"

namespace modelpool {

// BartWeights
//
// A BART model's weights on one device in one compute type, read once and shared by every
// instance there: immutable, so thread-safe. Checkpoints of BartForConditionalGeneration
// (names under "model.", with lm_head.weight and final_logits_bias) and of BartModel (bare
// names, tied head) both load; see Note [BART embeddings] in bart_model.cc.
struct BartWeights {
  struct Linear {
    at::Tensor weight, bias;
  };
  struct LayerNorm {
    at::Tensor weight, bias;
  };
  struct EncoderLayer {
    Linear qkv;  // q, k and v stacked: [3 * d_model, d_model]
    Linear out;
    LayerNorm self_norm;
    Linear fc1, fc2;
    LayerNorm final_norm;
  };
  struct DecoderLayer {
    Linear self_qkv;
    Linear self_out;
    LayerNorm self_norm;
    Linear cross_q;
    Linear cross_kv;  // k and v stacked: [2 * d_model, d_model]
    Linear cross_out;
    LayerNorm cross_norm;
    Linear fc1, fc2;
    LayerNorm final_norm;
  };

  // Reads every weight `config` calls for from `checkpoint` onto `device` as `dtype`.
  // `NotFound` or `InvalidArgument` naming the tensor when a weight is missing or misshapen.
  static absl::StatusOr<std::shared_ptr<const BartWeights>> Load(
      const BartConfig& config, const SafetensorsCheckpoint& checkpoint, c10::Device device,
      at::ScalarType dtype);
  // The errors `Load` would give, without reading any weight.
  static absl::Status Check(const BartConfig& config, const SafetensorsCheckpoint& checkpoint);
  // Bytes of the weights on a device (an untied head counted as a second matrix).
  static int64_t Bytes(const BartConfig& config, at::ScalarType dtype);

  at::Tensor encoder_embedding;  // [vocab, d_model]
  at::Tensor decoder_embedding;  // the encoder's, when the checkpoint shares them
  // [vocab, d_model], the decoder's embedding when tied; on a GPU, rows up to a multiple of 8
  // (Note [Aligned output head]).
  at::Tensor lm_head;
  at::Tensor final_logits_bias;  // [vocab], or undefined when the checkpoint has none
  at::Tensor encoder_positions;  // [max_position_embeddings + 2, d_model]
  at::Tensor decoder_positions;
  LayerNorm encoder_embedding_norm;
  LayerNorm decoder_embedding_norm;
  std::vector<EncoderLayer> encoder;
  std::vector<DecoderLayer> decoder;
};

// BartModel
//
// A BART encoder-decoder (transformers' BartForConditionalGeneration, inference only) on one
// device: shared weights and the instance's own decoder caches (Note [Decoder caches]), behind
// the `EncoderDecoder` interface.
class BartModel : public EncoderDecoder {
 public:
  // An instance on the device of `weights` (loaded for `config` in `dtype`), with its caches
  // allocated for `limits`, whose input and output lengths must be within the positions the
  // model has. Throws `c10::Error` when the device cannot hold them.
  BartModel(const BartConfig& config, std::shared_ptr<const BartWeights> weights,
            c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits);
  ~BartModel() override;

  // Bytes of an instance's caches on its device.
  static int64_t CacheBytes(const BartConfig& config, at::ScalarType dtype,
                            const SummarizerLimits& limits);

  at::Tensor Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) override;
  void StartDecoding(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                     int64_t num_beams) override;
  at::Tensor Step(const at::Tensor& tokens, int64_t position) override;
  void Reorder(const at::Tensor& parents, int64_t length) override;
  bool CanStepAt(int64_t positions) const override { return positions <= caches_.capacity(); }
  at::Tensor StepAt(const at::Tensor& tokens, const at::Tensor& position) override;

  std::array<int64_t, 3> StepShape() const override { return caches_.StepShape(); }
  const SummarizerLimits& limits() const override { return limits_; }
  c10::Device device() const override { return device_; }

 private:
  at::Tensor Norm(const at::Tensor& x, const BartWeights::LayerNorm& norm) const;
  // Norm(y + residual), over `y` where the kernels are fused.
  at::Tensor AddNorm(at::Tensor y, const at::Tensor& residual,
                     const BartWeights::LayerNorm& norm) const;
  // fc2(activation(fc1(x))).
  at::Tensor Feed(const at::Tensor& x, const BartWeights::Linear& fc1,
                  const BartWeights::Linear& fc2) const;
  // x · weightᵀ + bias: on the small-batch kernel for a decoder step's few rows where the fused
  // kernels run (Note [Small-batch linear]), else cuBLAS.
  at::Tensor Linear(const at::Tensor& x, const BartWeights::Linear& linear) const;
  // The decoder layers and the head on the embedded tokens `h`, with `self_attention(layer,
  // qkv, scaling)` for each layer's self-attention: the logits, float32 [rows, vocab].
  at::Tensor Decode(
      at::Tensor h,
      const std::function<at::Tensor(int64_t, const at::Tensor&, double)>& self_attention);
  // Token embeddings (scaled when the config says so) plus the positions from `first`.
  at::Tensor Embed(const at::Tensor& ids, const at::Tensor& table, const at::Tensor& positions,
                   int64_t first, int64_t count) const;
  // What every encoder layer needs to leave the padding out (Note [BART attention kernels]):
  // the rows' starts and lengths (int32) for flash attention, else an additive bias ([batch, 1,
  // 1, length], its rows 16-byte aligned).
  struct EncoderPadding {
    at::Tensor starts, lengths;
    at::Tensor bias;
  };
  EncoderPadding PaddingOf(const at::Tensor& attention_mask) const;
  // The encoder's self-attention over `qkv` ([batch, length, 3 * d_model], the projections'
  // output): [batch, length, d_model].
  at::Tensor EncoderAttention(const at::Tensor& qkv, const EncoderPadding& padding) const;

  const BartConfig config_;
  const c10::Device device_;
  const at::ScalarType dtype_;
  const SummarizerLimits limits_;
  const std::shared_ptr<const BartWeights> weights_;
  const BartWeights& w_;
  const bool fused_;  // Note [Fused epilogues]

  DecoderCaches caches_;  // Note [Decoder caches]
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BART_BART_MODEL_H_
