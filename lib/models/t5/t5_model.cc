#include "lib/models/t5/t5_model.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ATen/ATen.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/base/saturating.h"
#include "lib/models/attention_bias.h"
#include "lib/models/formats/weights.h"
#include "lib/models/fused_ops.h"
#include "modelpool/base/status.h"
#include "torch/version.h"

// at::rms_norm (fused on CUDA in recent releases) exists from PyTorch 2.4.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MODELPOOL_HAVE_AT_RMS_NORM 1
#endif

namespace modelpool {
namespace {

// transformers' T5Attention._relative_position_bucket, operation for operation, so that the
// buckets (a float log truncated to an integer) come out the same on the same device.
at::Tensor RelativePositionBucket(at::Tensor relative_position, bool bidirectional,
                                  int64_t num_buckets, int64_t max_distance) {
  at::Tensor buckets = at::zeros_like(relative_position);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + relative_position.gt(0).to(at::kLong) * num_buckets;
    relative_position = at::abs(relative_position);
  } else {
    relative_position = -at::min(relative_position, at::zeros_like(relative_position));
  }
  const int64_t max_exact = num_buckets / 2;
  const at::Tensor is_small = relative_position.lt(max_exact);
  at::Tensor if_large =
      (at::log(relative_position.to(at::kFloat) / max_exact) /
       std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
       (num_buckets - max_exact))
          .to(at::kLong) +
      max_exact;
  if_large = at::min(if_large, at::full_like(if_large, num_buckets - 1));
  return buckets + at::where(is_small, relative_position, if_large);
}

// transformers' NewGELUActivation ("gelu_new"), written out as it is so that float32 results
// match it to the bit; the fused at::gelu(x, "tanh") can differ in the last place.
at::Tensor GeluNew(const at::Tensor& x) {
  const at::Tensor inner = x + at::pow(x, 3.0) * 0.044715;
  return (x * 0.5) * (at::tanh(inner * std::sqrt(2.0 / std::numbers::pi)) + 1.0);
}

std::string LayerName(const char* stack, int64_t layer, const std::string& rest) {
  return absl::StrCat(stack, ".block.", layer, ".layer.", rest);
}

// `InvalidArgument` when config.json asks for more encoder or decoder blocks than the
// checkpoint holds: checked before anything is built per layer, since the counts come from a
// file.
absl::Status CheckLayerCounts(const T5Config& config, const SafetensorsCheckpoint& checkpoint) {
  for (const auto& [key, layers, stack] :
       {std::tuple{"num_layers", config.num_layers, "encoder.block."},
        std::tuple{"num_decoder_layers", config.num_decoder_layers, "decoder.block."}}) {
    const int64_t stored = checkpoint.NumBlocks(stack);
    if (layers > stored) {
      return absl::InvalidArgumentError(absl::StrCat("config.json has ", key, " ", layers,
                                                     ", but the weights hold ", stored, " blocks (",
                                                     stack, "N.)"));
    }
  }
  return absl::OkStatus();
}

// Reads every weight of `config` into `out`, or with `out` null only checks them. Adds the
// name of every tensor it reads to `names_read` when that is given.
absl::Status ReadWeights(const T5Config& config, const SafetensorsCheckpoint& checkpoint,
                         c10::Device device, at::ScalarType dtype, T5Weights* out,
                         std::set<std::string>* names_read = nullptr) {
  MODELPOOL_RETURN_IF_ERROR(CheckLayerCounts(config, checkpoint));
  const bool check_only = out == nullptr;
  T5Weights unused;
  T5Weights& w = check_only ? unused : *out;
  const int64_t d = config.d_model;
  const int64_t inner = config.inner_dim();
  const int64_t d_ff = config.d_ff;
  auto read = [&](const std::string& name,
                  const std::vector<int64_t>& shape) -> absl::StatusOr<at::Tensor> {
    if (names_read != nullptr) names_read->insert(name);
    if (!check_only) return ReadTensor(checkpoint, name, dtype, device, shape);
    MODELPOOL_RETURN_IF_ERROR(CheckTensor(checkpoint, name, shape));
    return at::Tensor();
  };
  auto cat = [&](const std::vector<at::Tensor>& parts) {
    return check_only ? at::Tensor() : at::cat(parts, 0);
  };
  // q, k, v (or k, v) of one attention, stacked so that one matrix product computes them.
  auto read_stacked = [&](const std::string& prefix,
                          std::initializer_list<const char*> parts) -> absl::StatusOr<at::Tensor> {
    std::vector<at::Tensor> tensors;
    for (const char* part : parts) {
      MODELPOOL_ASSIGN_OR_RETURN(at::Tensor t,
                                 read(absl::StrCat(prefix, part, ".weight"), {inner, d}));
      tensors.push_back(std::move(t));
    }
    return cat(tensors);
  };
  auto read_ff = [&](const std::string& prefix) -> absl::StatusOr<T5Weights::FeedForward> {
    T5Weights::FeedForward ff;
    if (config.gated) {
      MODELPOOL_ASSIGN_OR_RETURN(at::Tensor wi0, read(prefix + "wi_0.weight", {d_ff, d}));
      MODELPOOL_ASSIGN_OR_RETURN(at::Tensor wi1, read(prefix + "wi_1.weight", {d_ff, d}));
      ff.wi = cat({wi0, wi1});
    } else {
      MODELPOOL_ASSIGN_OR_RETURN(ff.wi, read(prefix + "wi.weight", {d_ff, d}));
    }
    MODELPOOL_ASSIGN_OR_RETURN(ff.wo, read(prefix + "wo.weight", {d, d_ff}));
    return ff;
  };

  bool found_embedding = false;
  // save_pretrained keeps one of the tied copies of the embedding, under any of these names.
  for (const char* name :
       {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
    if (checkpoint.Find(name).tensor == nullptr) continue;
    MODELPOOL_ASSIGN_OR_RETURN(w.embedding, read(name, {config.vocab_size, d}));
    found_embedding = true;
    break;
  }
  if (!found_embedding) {
    return absl::NotFoundError(
        "the checkpoint has no embedding (shared.weight, encoder.embed_tokens.weight or "
        "decoder.embed_tokens.weight)");
  }
  // Note [T5 output scaling] in t5_config.cc.
  if (checkpoint.Find("lm_head.weight").tensor != nullptr) {
    MODELPOOL_ASSIGN_OR_RETURN(w.lm_head, read("lm_head.weight", {config.vocab_size, d}));
  } else if (config.tie_word_embeddings) {
    w.lm_head = w.embedding;
  } else {
    return absl::NotFoundError(
        "the checkpoint has no lm_head.weight, and tie_word_embeddings is false in config.json");
  }
  const std::vector<int64_t> table_shape = {config.relative_attention_num_buckets,
                                            config.num_heads};
  MODELPOOL_ASSIGN_OR_RETURN(
      w.encoder_bias_table,
      read(LayerName("encoder", 0, "0.SelfAttention.relative_attention_bias.weight"), table_shape));
  MODELPOOL_ASSIGN_OR_RETURN(
      w.decoder_bias_table,
      read(LayerName("decoder", 0, "0.SelfAttention.relative_attention_bias.weight"), table_shape));
  MODELPOOL_ASSIGN_OR_RETURN(w.encoder_final_norm, read("encoder.final_layer_norm.weight", {d}));
  MODELPOOL_ASSIGN_OR_RETURN(w.decoder_final_norm, read("decoder.final_layer_norm.weight", {d}));

  for (int64_t i = 0; i < config.num_layers; ++i) {
    T5Weights::EncoderLayer layer;
    MODELPOOL_ASSIGN_OR_RETURN(layer.attention_norm,
                               read(LayerName("encoder", i, "0.layer_norm.weight"), {d}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.qkv, read_stacked(LayerName("encoder", i, "0.SelfAttention."), {"q", "k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.o, read(LayerName("encoder", i, "0.SelfAttention.o.weight"), {d, inner}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.ff_norm,
                               read(LayerName("encoder", i, "1.layer_norm.weight"), {d}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.ff, read_ff(LayerName("encoder", i, "1.DenseReluDense.")));
    w.encoder.push_back(std::move(layer));
  }
  for (int64_t i = 0; i < config.num_decoder_layers; ++i) {
    T5Weights::DecoderLayer layer;
    MODELPOOL_ASSIGN_OR_RETURN(layer.self_norm,
                               read(LayerName("decoder", i, "0.layer_norm.weight"), {d}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.self_qkv, read_stacked(LayerName("decoder", i, "0.SelfAttention."), {"q", "k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.self_o, read(LayerName("decoder", i, "0.SelfAttention.o.weight"), {d, inner}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.cross_norm,
                               read(LayerName("decoder", i, "1.layer_norm.weight"), {d}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.cross_q, read(LayerName("decoder", i, "1.EncDecAttention.q.weight"), {inner, d}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.cross_kv, read_stacked(LayerName("decoder", i, "1.EncDecAttention."), {"k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(
        layer.cross_o, read(LayerName("decoder", i, "1.EncDecAttention.o.weight"), {d, inner}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.ff_norm,
                               read(LayerName("decoder", i, "2.layer_norm.weight"), {d}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.ff, read_ff(LayerName("decoder", i, "2.DenseReluDense.")));
    w.decoder.push_back(std::move(layer));
  }
  return absl::OkStatus();
}

}  // namespace

T5Model::T5Model(const T5Config& config, std::shared_ptr<const T5Weights> weights,
                 c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits)
    : config_(config),
      device_(device),
      dtype_(dtype),
      limits_(limits),
      weights_(std::move(weights)),
      w_(*weights_),
      self_bias_(PositionBias(w_.decoder_bias_table, 1, limits.max_new_tokens,
                              /*bidirectional=*/false, /*first_query=*/limits.max_new_tokens - 1)
                     .contiguous()),
      fused_norms_(CanFuseEpilogues(device, dtype, config.d_model)),
      caches_(config.num_decoder_layers, config.num_heads, config.d_kv, limits,
              at::TensorOptions().dtype(dtype).device(device)) {
  // Note [Fused epilogues]: T5's feed-forward has no bias, and cuBLASLt's ReLU epilogue comes
  // with one; a bias of zeros adds nothing.
  if (config.activation == T5Activation::kRelu && !config.gated && fused_norms_) {
    zero_bias_ = at::zeros({config.d_ff}, at::TensorOptions().dtype(dtype).device(device));
  }
}

T5Model::~T5Model() = default;

absl::StatusOr<std::shared_ptr<const T5Weights>> T5Weights::Load(
    const T5Config& config, const SafetensorsCheckpoint& checkpoint, c10::Device device,
    at::ScalarType dtype) {
  auto weights = std::make_shared<T5Weights>();
  MODELPOOL_RETURN_IF_ERROR(ReadWeights(config, checkpoint, device, dtype, weights.get()));
  return std::shared_ptr<const T5Weights>(std::move(weights));
}

absl::Status T5Weights::Check(const T5Config& config, const SafetensorsCheckpoint& checkpoint,
                              std::vector<std::string>* unused) {
  std::set<std::string> read;
  MODELPOOL_RETURN_IF_ERROR(
      ReadWeights(config, checkpoint, c10::kCPU, at::kFloat, /*out=*/nullptr, &read));
  if (unused != nullptr) {
    // The blocks only: the embedding may be stored under three tied names, of which one is read.
    for (const std::string& name : checkpoint.names()) {
      const bool block =
          absl::StartsWith(name, "encoder.block.") || absl::StartsWith(name, "decoder.block.");
      if (block && !read.contains(name)) unused->push_back(name);
    }
  }
  return absl::OkStatus();
}

int64_t T5Weights::Bytes(const T5Config& c, at::ScalarType dtype) {
  const int64_t d = c.d_model;
  const int64_t inner = c.inner_dim();
  const int64_t ff = (c.gated ? 3 : 2) * d * c.d_ff;
  int64_t params = c.vocab_size * d * (c.tie_word_embeddings ? 1 : 2);
  params += c.num_layers * (4 * inner * d + ff + 2 * d);
  params += c.num_decoder_layers * (8 * inner * d + ff + 3 * d);
  params += 2 * c.relative_attention_num_buckets * c.num_heads + 2 * d;
  return params * static_cast<int64_t>(c10::elementSize(dtype));
}

int64_t T5Model::CacheBytes(const T5Config& c, at::ScalarType dtype,
                            const SummarizerLimits& limits) {
  // Saturating: the limits come from the user. The position bias is one row (see self_bias_).
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  return SaturatingAdd(
      DecoderCaches::Bytes(c.num_decoder_layers, c.num_heads, c.d_kv, limits, element),
      SaturatingProduct({c.num_heads, limits.max_new_tokens, element}));
}

at::Tensor T5Model::PositionBias(const at::Tensor& table, int64_t queries, int64_t keys,
                                 bool bidirectional, int64_t first_query) const {
  const at::TensorOptions longs = at::TensorOptions().dtype(at::kLong).device(device_);
  const at::Tensor relative = at::arange(keys, longs).unsqueeze(0) -
                              at::arange(first_query, first_query + queries, longs).unsqueeze(1);
  const at::Tensor buckets =
      RelativePositionBucket(relative, bidirectional, config_.relative_attention_num_buckets,
                             config_.relative_attention_max_distance);
  return at::embedding(table, buckets).permute({2, 0, 1}).unsqueeze(0);
}

// transformers' T5LayerNorm: a root-mean-square norm without bias, the mean square taken in
// float32.
at::Tensor T5Model::RmsNorm(const at::Tensor& x, const at::Tensor& weight) const {
#ifdef MODELPOOL_HAVE_AT_RMS_NORM
  // One fused kernel instead of six; it rounds once where transformers rounds twice, which
  // matters only below float32.
  if (dtype_ != at::kFloat)
    return at::rms_norm(x, {x.size(-1)}, weight, config_.layer_norm_epsilon);
#endif
  const at::Tensor variance = x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  at::Tensor y = x * at::rsqrt(variance + config_.layer_norm_epsilon);
  if (dtype_ != at::kFloat) y = y.to(dtype_);
  return weight * y;
}

at::Tensor T5Model::Feed(const at::Tensor& x, const T5Weights::FeedForward& ff) const {
  auto activate = [&](const at::Tensor& h) {
    switch (config_.activation) {
      case T5Activation::kRelu:
        return at::relu(h);
      case T5Activation::kGeluTanh:
        return dtype_ == at::kFloat ? GeluNew(h) : at::gelu(h, "tanh");
      case T5Activation::kGelu:
        return at::gelu(h);
      case T5Activation::kSilu:
        return at::silu(h);
    }
    return h;
  };
  if (zero_bias_.defined()) {
    if (auto h = SmallBatchLinearWhereFaster(x, ff.wi, at::Tensor(),
                                             kernels::SmallBatchActivation::kRelu)) {
      return Linear(*h, ff.wo);
    }
    return Linear(LinearActivation(x, ff.wi, zero_bias_, /*gelu=*/false), ff.wo);
  }
  const at::Tensor h = Linear(x, ff.wi);
  if (!config_.gated) return Linear(activate(h), ff.wo);
  const int64_t d_ff = config_.d_ff;
  return Linear(activate(h.narrow(-1, 0, d_ff)) * h.narrow(-1, d_ff, d_ff), ff.wo);
}

at::Tensor T5Model::Linear(const at::Tensor& x, const at::Tensor& weight) const {
  if (fused_norms_) {
    if (auto y = SmallBatchLinearWhereFaster(x, weight, at::Tensor())) return *std::move(y);
  }
  return at::linear(x, weight);
}

// Note [T5 attention kernels]
// The encoder's attention has a bias (relative positions and padding) and no scaling (T5
// folds 1/sqrt(d_kv) into its weights). On CUDA with PyTorch 2 it runs on the
// memory-efficient kernel, which takes an additive bias and never writes the scores out;
// elsewhere on matrix products and softmax. Never through scaled_dot_product_attention's
// dispatcher, whose cuDNN backend takes a process-wide lock on every launch. The decoder's
// attention is the caches' (Note [Decoder attention kernels]): its self-attention, which has
// the relative position bias, on the decode kernel where it is built, else matrix products.
at::Tensor T5Model::EncoderAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& bias) const {
#if TORCH_VERSION_MAJOR >= 2
  const int64_t per_16_bytes = 16 / static_cast<int64_t>(c10::elementSize(dtype_));
  if (device_.is_cuda() && config_.d_kv % per_16_bytes == 0) {
    return std::get<0>(at::_scaled_dot_product_efficient_attention(
        q, k, v, bias, /*compute_log_sumexp=*/false, /*dropout_p=*/0.0, /*is_causal=*/false,
        /*scale=*/1.0));
  }
#endif
  return at::matmul(at::softmax(at::matmul(q, k.transpose(-1, -2)) + bias, -1), v);
}

at::Tensor T5Model::Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  const int64_t batch = input_ids.size(0);
  const int64_t length = input_ids.size(1);
  const int64_t heads = config_.num_heads;
  const at::TensorOptions options = at::TensorOptions().dtype(dtype_).device(device_);
  at::Tensor h = at::embedding(w_.embedding, input_ids);
  // The bias of every layer: relative positions (the first layer's table) and padding. Its
  // rows start 16-byte aligned, as the memory-efficient kernel needs them.
  const int64_t aligned = (length + 7) / 8 * 8;
  const at::Tensor bias =
      at::empty({batch, heads, length, aligned}, options)
          .narrow(3, 0, length)
          .copy_(at::where(attention_mask.logical_not().view({batch, 1, 1, length}),
                           at::scalar_tensor(LowestOf(dtype_), options),
                           PositionBias(w_.encoder_bias_table, length, length,
                                        /*bidirectional=*/true)));
  // x: h normalized for the next sublayer.
  at::Tensor x =
      RmsNorm(h, w_.encoder.empty() ? w_.encoder_final_norm : w_.encoder.front().attention_norm);
  for (size_t i = 0; i < w_.encoder.size(); ++i) {
    const T5Weights::EncoderLayer& layer = w_.encoder[i];
    const at::Tensor qkv = at::linear(x, layer.qkv)
                               .view({batch, length, 3, heads, config_.d_kv})
                               .permute({2, 0, 3, 1, 4});
    const at::Tensor attention = EncoderAttention(qkv[0], qkv[1], qkv[2], bias)
                                     .transpose(1, 2)
                                     .reshape({batch, length, config_.inner_dim()});
    std::tie(h, x) = AddNorm(at::linear(attention, layer.o), h, layer.ff_norm);
    const at::Tensor& next =
        i + 1 < w_.encoder.size() ? w_.encoder[i + 1].attention_norm : w_.encoder_final_norm;
    std::tie(h, x) = AddNorm(Feed(x, layer.ff), h, next);
  }
  return x;
}

std::pair<at::Tensor, at::Tensor> T5Model::AddNorm(const at::Tensor& y, const at::Tensor& h,
                                                   const at::Tensor& weight) const {
  if (fused_norms_) return AddRmsNorm(y, h, weight, config_.layer_norm_epsilon);
  at::Tensor sum = h + y;
  at::Tensor normed = RmsNorm(sum, weight);
  return {std::move(sum), std::move(normed)};
}

void T5Model::StartDecoding(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                            int64_t num_beams) {
  caches_.Start(attention_mask, num_beams);
  for (size_t i = 0; i < w_.decoder.size(); ++i) {
    caches_.SetCross(static_cast<int64_t>(i), at::linear(encoder_hidden, w_.decoder[i].cross_kv));
  }
}

at::Tensor T5Model::Step(const at::Tensor& tokens, int64_t position) {
  caches_.Reserve(position + 1);
  // The last position + 1 entries of the last position's bias row (see self_bias_).
  const at::Tensor self_bias =
      self_bias_.narrow(3, limits_.max_new_tokens - position - 1, position + 1);
  // T5 folds 1/sqrt(d_kv) into its weights: no scaling.
  return Decode(at::embedding(w_.embedding, tokens), [&](int64_t layer, const at::Tensor& qkv) {
    return caches_.SelfAttention(layer, qkv, position, /*scale=*/1.0, self_bias);
  });
}

at::Tensor T5Model::StepAt(const at::Tensor& tokens, const at::Tensor& position) {
  // Key j of the query at p takes entry j - p + last of the last position's bias row (see
  // self_bias_); keys past p are masked, and their index clamped to stay in the row.
  const int64_t last = limits_.max_new_tokens - 1;
  const at::Tensor entries = (caches_.positions() - position + last).clamp_max(last);
  const DecoderCaches::StepKeys keys = caches_.KeysAt(position);
  if (caches_.decode_kernel()) {
    // The kernel reads the row itself, entry j - p + last for key j.
    const at::Tensor row = self_bias_.view({config_.num_heads, limits_.max_new_tokens});
    return Decode(at::embedding(w_.embedding, tokens), [&](int64_t layer, const at::Tensor& qkv) {
      return caches_.SelfAttentionAt(layer, qkv, keys, /*scale=*/1.0, at::Tensor(), row);
    });
  }
  const at::Tensor self_bias = self_bias_.index_select(3, entries) + keys.mask;
  return Decode(at::embedding(w_.embedding, tokens), [&](int64_t layer, const at::Tensor& qkv) {
    return caches_.SelfAttentionAt(layer, qkv, keys, /*scale=*/1.0, self_bias);
  });
}

at::Tensor T5Model::Decode(
    at::Tensor h, const std::function<at::Tensor(int64_t, const at::Tensor&)>& self_attention) {
  const int64_t rows = caches_.rows();
  // x: h normalized for the next sublayer.
  at::Tensor x =
      RmsNorm(h, w_.decoder.empty() ? w_.decoder_final_norm : w_.decoder.front().self_norm);
  for (size_t i = 0; i < w_.decoder.size(); ++i) {
    const T5Weights::DecoderLayer& layer = w_.decoder[i];
    const int64_t l = static_cast<int64_t>(i);
    const at::Tensor qkv =
        Linear(x, layer.self_qkv).view({rows, 3, config_.num_heads, config_.d_kv});
    std::tie(h, x) = AddNorm(Linear(self_attention(l, qkv), layer.self_o), h, layer.cross_norm);
    const at::Tensor q = Linear(x, layer.cross_q);
    std::tie(h, x) = AddNorm(Linear(caches_.CrossAttention(l, q, /*scale=*/1.0), layer.cross_o), h,
                             layer.ff_norm);
    const at::Tensor& next =
        i + 1 < w_.decoder.size() ? w_.decoder[i + 1].self_norm : w_.decoder_final_norm;
    std::tie(h, x) = AddNorm(Feed(x, layer.ff), h, next);
  }
  if (config_.scale_decoder_outputs) x = x * std::pow(static_cast<double>(config_.d_model), -0.5);
  return at::linear(x, w_.lm_head).to(at::kFloat);
}

void T5Model::Reorder(const at::Tensor& parents, int64_t length) {
  caches_.Reorder(parents, length);
}

}  // namespace modelpool
