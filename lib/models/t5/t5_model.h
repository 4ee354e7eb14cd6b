#ifndef MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_
#define MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ATen/Tensor.h"
#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/generation/decoder_caches.h"
#include "lib/models/generation/encoder_decoder.h"
#include "lib/models/summarizer_folder.h"
#include "lib/models/t5/t5_config.h"

namespace modelpool {

// T5Weights
//
// A T5 model's weights on one device in one compute type, read once and shared by every
// instance there: immutable, so thread-safe.
struct T5Weights {
  struct FeedForward {
    at::Tensor wi;  // [d_ff, d_model], or wi_0 and wi_1 stacked: [2 * d_ff, d_model]
    at::Tensor wo;  // [d_model, d_ff]
  };
  struct EncoderLayer {
    at::Tensor attention_norm;
    at::Tensor qkv;  // q, k and v stacked: [3 * inner, d_model]
    at::Tensor o;
    at::Tensor ff_norm;
    FeedForward ff;
  };
  struct DecoderLayer {
    at::Tensor self_norm;
    at::Tensor self_qkv;
    at::Tensor self_o;
    at::Tensor cross_norm;
    at::Tensor cross_q;
    at::Tensor cross_kv;  // k and v stacked: [2 * inner, d_model]
    at::Tensor cross_o;
    at::Tensor ff_norm;
    FeedForward ff;
  };

  // Reads every weight `config` calls for from `checkpoint` onto `device` as `dtype`.
  // `InvalidArgument` or `NotFound` naming the tensor when a weight is missing or misshapen.
  static absl::StatusOr<std::shared_ptr<const T5Weights>> Load(
      const T5Config& config, const SafetensorsCheckpoint& checkpoint, c10::Device device,
      at::ScalarType dtype);
  // Whether `checkpoint` has every weight `config` needs, of the right shape and a float type,
  // without reading any: the errors `Load` would give. When `unused` is given, the tensors of
  // the checkpoint's blocks that `config` does not read are added to it.
  static absl::Status Check(const T5Config& config, const SafetensorsCheckpoint& checkpoint,
                            std::vector<std::string>* unused = nullptr);
  // Bytes of the weights on a device.
  static int64_t Bytes(const T5Config& config, at::ScalarType dtype);

  at::Tensor embedding;  // shared by encoder and decoder: [vocab, d_model]
  at::Tensor lm_head;    // [vocab, d_model]; the embedding itself when tied
  at::Tensor encoder_bias_table;
  at::Tensor decoder_bias_table;
  at::Tensor encoder_final_norm;
  at::Tensor decoder_final_norm;
  std::vector<EncoderLayer> encoder;
  std::vector<DecoderLayer> decoder;
};

// T5Model
//
// A T5 encoder-decoder (transformers' T5ForConditionalGeneration, inference only) on one
// device: shared weights and the instance's own decoder caches (Note [Decoder caches]), behind
// the `EncoderDecoder` interface.
class T5Model : public EncoderDecoder {
 public:
  // An instance on the device of `weights` (loaded for `config` in `dtype`), with its caches
  // allocated for `limits` (see Note [T5 decoder caches]). Throws `c10::Error` when the device
  // cannot hold them.
  T5Model(const T5Config& config, std::shared_ptr<const T5Weights> weights, c10::Device device,
          at::ScalarType dtype, const SummarizerLimits& limits);

  // Bytes of an instance's caches on its device at their largest; saturates at INT64_MAX.
  static int64_t CacheBytes(const T5Config& config, at::ScalarType dtype,
                            const SummarizerLimits& limits);

  ~T5Model() override;

  at::Tensor Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) override;
  // Computes every decoder layer's cross-attention keys and values once.
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
  at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
  // {h + y, RmsNorm(h + y, weight)}: a residual add and the norm of the sublayer after it, one
  // kernel where the norms are fused (the sum then written over `y`).
  std::pair<at::Tensor, at::Tensor> AddNorm(const at::Tensor& y, const at::Tensor& h,
                                            const at::Tensor& weight) const;
  at::Tensor Feed(const at::Tensor& x, const T5Weights::FeedForward& ff) const;
  // x · weightᵀ: on the small-batch kernel for a decoder step's few rows where the fused
  // kernels run (Note [Small-batch linear]), else cuBLAS.
  at::Tensor Linear(const at::Tensor& x, const at::Tensor& weight) const;
  // The decoder layers and the head on the embedded tokens `h`, with `self_attention(layer,
  // qkv)` for each layer's self-attention: the logits, float32 [rows, vocab].
  at::Tensor Decode(at::Tensor h,
                    const std::function<at::Tensor(int64_t, const at::Tensor&)>& self_attention);
  // Attention over `q`, `k`, `v` ([batch, heads, length, d_kv]) with the additive `bias`
  // ([batch, heads, length, length]). Note [T5 attention kernels].
  at::Tensor EncoderAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& bias) const;
  // [1, heads, queries, keys] relative position bias from `table` ([buckets, heads]), for
  // the queries at positions first_query, first_query + 1, ...
  at::Tensor PositionBias(const at::Tensor& table, int64_t queries, int64_t keys,
                          bool bidirectional, int64_t first_query = 0) const;

  const T5Config config_;
  const c10::Device device_;
  const at::ScalarType dtype_;
  const SummarizerLimits limits_;
  const std::shared_ptr<const T5Weights> weights_;
  const T5Weights& w_;

  // The causal position bias depends only on how far a key lies behind its query, so one row
  // serves every step: the bias of the last position, max_new_tokens - 1, over every key; step
  // t reads its last t + 1 entries. [1, heads, 1, max_new_tokens], not the square of that.
  at::Tensor self_bias_;
  // Whether residual adds and RMSNorms run as one kernel (Note [Fused epilogues]).
  const bool fused_norms_;
  // [d_ff] zeros where the feed-forward's ReLU runs in the product's epilogue, else undefined.
  at::Tensor zero_bias_;
  DecoderCaches caches_;  // Note [Decoder caches]
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_
