#ifndef MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_
#define MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "ATen/Tensor.h"
#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "c10/core/ScalarType.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/generation/generation.h"
#include "lib/models/t5/t5_config.h"

namespace modelpool {

// The shapes an instance is sized for: its caches are allocated once, at load.
struct T5Limits {
  int64_t max_batch_size = 32;  // texts per batch
  int64_t max_num_beams = 4;
  int64_t max_input_tokens = 512;
  int64_t max_new_tokens = 256;

  int64_t max_rows() const { return max_batch_size * max_num_beams; }
};

// T5Model
//
// A T5 encoder-decoder (transformers' T5ForConditionalGeneration, inference only) on one
// device, with its decoder caches. `Encode` runs the encoder; `StartDecoding` takes its output
// for one batch; `Step` and `Reorder` (the `StepDecoder` interface) then run the decoder one
// token at a time. See Note [T5 decoder caches] in t5_model.cc.
//
// Not thread-safe: the caches belong to the batch being decoded.
class T5Model : public StepDecoder {
 public:
  // Loads the weights of `checkpoint` onto `device` as `dtype` and allocates the caches for
  // `limits`. `InvalidArgument` or `NotFound` naming the tensor when a weight is missing or
  // misshapen.
  static absl::StatusOr<std::unique_ptr<T5Model>> Load(const T5Config& config,
                                                       const SafetensorsCheckpoint& checkpoint,
                                                       c10::Device device, at::ScalarType dtype,
                                                       const T5Limits& limits);

  // Whether `checkpoint` has every weight `config` needs, of the right shape and a float type,
  // without reading any: the errors `Load` would give.
  static absl::Status CheckCheckpoint(const T5Config& config,
                                      const SafetensorsCheckpoint& checkpoint);

  // Bytes an instance allocates on its device (weights and caches), without the workspace.
  static int64_t AllocatedBytes(const T5Config& config, at::ScalarType dtype,
                                const T5Limits& limits);

  ~T5Model() override;

  // The encoder's last hidden state, [batch, length, d_model] in the model's dtype, for
  // `input_ids` (int64 [batch, length]) where `attention_mask` (bool, same shape) is true.
  at::Tensor Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask);

  // Prepares decoding of the batch whose encoder output is `encoder_hidden`, with
  // `num_beams` rows per text: computes every decoder layer's cross-attention keys and values
  // once. Shapes must be within the limits.
  void StartDecoding(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                     int64_t num_beams);

  at::Tensor Step(const at::Tensor& tokens, int64_t position) override;
  void Reorder(const at::Tensor& parents, int64_t length) override;

  const T5Limits& limits() const { return limits_; }
  c10::Device device() const { return device_; }

 private:
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

  T5Model(const T5Config& config, c10::Device device, at::ScalarType dtype, const T5Limits& limits);
  // Reads every weight, or with `check_only` only checks them (leaving them undefined).
  absl::Status LoadWeights(const SafetensorsCheckpoint& checkpoint, bool check_only);
  void AllocateCaches();

  at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
  at::Tensor Feed(const at::Tensor& x, const FeedForward& ff) const;
  // [1, heads, queries, keys] relative position bias from `table` ([buckets, heads]).
  at::Tensor PositionBias(const at::Tensor& table, int64_t queries, int64_t keys,
                          bool bidirectional) const;

  const T5Config config_;
  const c10::Device device_;
  const at::ScalarType dtype_;
  const T5Limits limits_;

  at::Tensor embedding_;  // shared by encoder and decoder: [vocab, d_model]
  at::Tensor lm_head_;    // [vocab, d_model]; the embedding itself when tied
  at::Tensor encoder_bias_table_;
  at::Tensor decoder_bias_table_;
  at::Tensor encoder_final_norm_;
  at::Tensor decoder_final_norm_;
  std::vector<EncoderLayer> encoder_;
  std::vector<DecoderLayer> decoder_;

  // Note [T5 decoder caches]
  at::Tensor self_bias_;    // [1, heads, max_new_tokens, max_new_tokens], causal
  at::Tensor self_cache_;   // [layers, 2 (k, v), max_rows, heads, max_new_tokens, d_kv]
  at::Tensor cross_cache_;  // [layers, 2 (k, v), max_batch, heads, max_input_tokens, d_kv]

  // The batch being decoded.
  int64_t batch_ = 0;
  int64_t beams_ = 0;
  int64_t input_length_ = 0;
  at::Tensor cross_mask_;  // [batch, 1, 1, input_length]: 0, or the lowest value at padding
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_T5_T5_MODEL_H_
