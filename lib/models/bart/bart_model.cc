#include "lib/models/bart/bart_model.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "ATen/ATen.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/attention_bias.h"
#include "lib/models/flash_attention.h"
#include "lib/models/formats/weights.h"
#include "lib/models/fused_ops.h"
#include "modelpool/base/status.h"
#include "torch/version.h"

namespace modelpool {
namespace {

// Note [BART embeddings]
// BartForConditionalGeneration keeps its weights under "model." (BartModel's, saved alone,
// have no prefix) beside lm_head.weight and final_logits_bias, a [1, vocab] buffer added to
// the logits (zeros in bart-large-cnn). The token embedding is one matrix, model.shared,
// tied to the encoder's and the decoder's embed_tokens, and to lm_head unless
// tie_word_embeddings is false; save_pretrained keeps one name of a tied group, not always
// the same one. So the encoder reads its own embed_tokens when stored, else shared, else the
// decoder's (and the decoder likewise); two names whose stored bytes are equal load once;
// the head is lm_head.weight when stored (as for T5, Note [T5 output scaling]), else the
// decoder's embedding when tied.
struct Names {
  std::string prefix;  // "model." or ""
  std::string encoder_embedding, decoder_embedding;
};

Names NamesIn(const SafetensorsCheckpoint& checkpoint) {
  Names names;
  names.prefix =
      checkpoint.Find("model.encoder.embed_positions.weight").tensor != nullptr ? "model." : "";
  const std::string& p = names.prefix;
  auto first_stored = [&](std::initializer_list<std::string> candidates) {
    for (const std::string& name : candidates) {
      if (checkpoint.Find(name).tensor != nullptr) return name;
    }
    return p + "shared.weight";  // for the message
  };
  names.encoder_embedding = first_stored(
      {p + "encoder.embed_tokens.weight", p + "shared.weight", p + "decoder.embed_tokens.weight"});
  names.decoder_embedding = first_stored(
      {p + "decoder.embed_tokens.weight", p + "shared.weight", p + "encoder.embed_tokens.weight"});
  return names;
}

// Whether the tensors stored as `a` and `b` hold the same values: one name, or equal bytes.
bool SameStored(const SafetensorsCheckpoint& checkpoint, const std::string& a,
                const std::string& b) {
  if (a == b) return true;
  const SafetensorsCheckpoint::Entry x = checkpoint.Find(a);
  const SafetensorsCheckpoint::Entry y = checkpoint.Find(b);
  if (x.tensor == nullptr || y.tensor == nullptr || x.tensor->dtype != y.tensor->dtype ||
      x.tensor->shape != y.tensor->shape) {
    return false;
  }
  const absl::Span<const uint8_t> bx = x.file->Data(*x.tensor);
  const absl::Span<const uint8_t> by = y.file->Data(*y.tensor);
  return bx.size() == by.size() && std::memcmp(bx.data(), by.data(), bx.size()) == 0;
}

// Note [Aligned output head]
// An odd vocabulary (bart-large's 50265, RoBERTa's) makes the logits' rows start at addresses
// that are not 16-byte aligned, and cuBLAS then falls back to an unaligned kernel about ten
// times slower than its own (measured: 143 µs a step for 32 rows on an H200, a tenth of the
// step). On a GPU the head therefore gets zero rows up to a multiple of 8, and the logits are
// the first `vocab` columns of its product. Embeddings tied to the head become a view of its
// first rows, so that nothing is stored twice.
void AlignHead(int64_t vocab, BartWeights& w) {
  const int64_t rows = (vocab + 7) / 8 * 8;
  if (rows == vocab) return;
  at::Tensor head = at::zeros({rows, w.lm_head.size(1)}, w.lm_head.options());
  head.narrow(0, 0, vocab).copy_(w.lm_head);
  const at::Tensor tied = head.narrow(0, 0, vocab);
  if (w.encoder_embedding.is_same(w.lm_head)) w.encoder_embedding = tied;
  if (w.decoder_embedding.is_same(w.lm_head)) w.decoder_embedding = tied;
  w.lm_head = std::move(head);
}

// Reads every weight of `config` into `out`, or with `out` null only checks them.
absl::Status ReadWeights(const BartConfig& config, const SafetensorsCheckpoint& checkpoint,
                         c10::Device device, at::ScalarType dtype, BartWeights* out) {
  const bool check_only = out == nullptr;
  BartWeights unused;
  BartWeights& w = check_only ? unused : *out;
  const int64_t d = config.d_model;
  const Names names = NamesIn(checkpoint);
  const std::string& p = names.prefix;
  auto read = [&](const std::string& name,
                  const std::vector<int64_t>& shape) -> absl::StatusOr<at::Tensor> {
    if (!check_only) return ReadTensor(checkpoint, name, dtype, device, shape);
    MODELPOOL_RETURN_IF_ERROR(CheckTensor(checkpoint, name, shape));
    return at::Tensor();
  };
  auto linear = [&](const std::string& name, int64_t rows,
                    int64_t columns) -> absl::StatusOr<BartWeights::Linear> {
    BartWeights::Linear l;
    MODELPOOL_ASSIGN_OR_RETURN(l.weight, read(name + ".weight", {rows, columns}));
    MODELPOOL_ASSIGN_OR_RETURN(l.bias, read(name + ".bias", {rows}));
    return l;
  };
  // Projections of one attention stacked, so that one matrix product computes them.
  auto stacked =
      [&](const std::string& attention,
          std::initializer_list<const char*> parts) -> absl::StatusOr<BartWeights::Linear> {
    std::vector<at::Tensor> weights, biases;
    for (const char* part : parts) {
      MODELPOOL_ASSIGN_OR_RETURN(BartWeights::Linear l,
                                 linear(absl::StrCat(attention, part, "_proj"), d, d));
      weights.push_back(std::move(l.weight));
      biases.push_back(std::move(l.bias));
    }
    if (check_only) return BartWeights::Linear{};
    return BartWeights::Linear{at::cat(weights), at::cat(biases)};
  };
  auto norm = [&](const std::string& name) -> absl::StatusOr<BartWeights::LayerNorm> {
    BartWeights::LayerNorm n;
    MODELPOOL_ASSIGN_OR_RETURN(n.weight, read(name + ".weight", {d}));
    MODELPOOL_ASSIGN_OR_RETURN(n.bias, read(name + ".bias", {d}));
    return n;
  };

  // Note [BART embeddings]
  const std::vector<int64_t> embedding_shape = {config.vocab_size, d};
  MODELPOOL_ASSIGN_OR_RETURN(w.encoder_embedding, read(names.encoder_embedding, embedding_shape));
  if (check_only || !SameStored(checkpoint, names.encoder_embedding, names.decoder_embedding)) {
    MODELPOOL_ASSIGN_OR_RETURN(w.decoder_embedding, read(names.decoder_embedding, embedding_shape));
  } else {
    w.decoder_embedding = w.encoder_embedding;
  }
  if (checkpoint.Find("lm_head.weight").tensor != nullptr) {
    if (check_only || !SameStored(checkpoint, "lm_head.weight", names.decoder_embedding)) {
      MODELPOOL_ASSIGN_OR_RETURN(w.lm_head, read("lm_head.weight", embedding_shape));
    } else {
      w.lm_head = w.decoder_embedding;
    }
  } else if (config.tie_word_embeddings) {
    w.lm_head = w.decoder_embedding;
  } else {
    return absl::NotFoundError(
        "the checkpoint has no lm_head.weight, and tie_word_embeddings is false in config.json");
  }
  if (checkpoint.Find("final_logits_bias").tensor != nullptr) {
    MODELPOOL_ASSIGN_OR_RETURN(w.final_logits_bias,
                               read("final_logits_bias", {1, config.vocab_size}));
    if (!check_only) w.final_logits_bias = w.final_logits_bias.view({config.vocab_size});
  }

  const std::vector<int64_t> positions_shape = {
      config.max_position_embeddings + BartConfig::kPositionOffset, d};
  MODELPOOL_ASSIGN_OR_RETURN(w.encoder_positions,
                             read(p + "encoder.embed_positions.weight", positions_shape));
  MODELPOOL_ASSIGN_OR_RETURN(w.decoder_positions,
                             read(p + "decoder.embed_positions.weight", positions_shape));
  MODELPOOL_ASSIGN_OR_RETURN(w.encoder_embedding_norm, norm(p + "encoder.layernorm_embedding"));
  MODELPOOL_ASSIGN_OR_RETURN(w.decoder_embedding_norm, norm(p + "decoder.layernorm_embedding"));

  for (int64_t i = 0; i < config.encoder_layers; ++i) {
    const std::string l = absl::StrCat(p, "encoder.layers.", i, ".");
    BartWeights::EncoderLayer layer;
    MODELPOOL_ASSIGN_OR_RETURN(layer.qkv, stacked(l + "self_attn.", {"q", "k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.out, linear(l + "self_attn.out_proj", d, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.self_norm, norm(l + "self_attn_layer_norm"));
    MODELPOOL_ASSIGN_OR_RETURN(layer.fc1, linear(l + "fc1", config.encoder_ffn_dim, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.fc2, linear(l + "fc2", d, config.encoder_ffn_dim));
    MODELPOOL_ASSIGN_OR_RETURN(layer.final_norm, norm(l + "final_layer_norm"));
    w.encoder.push_back(std::move(layer));
  }
  for (int64_t i = 0; i < config.decoder_layers; ++i) {
    const std::string l = absl::StrCat(p, "decoder.layers.", i, ".");
    BartWeights::DecoderLayer layer;
    MODELPOOL_ASSIGN_OR_RETURN(layer.self_qkv, stacked(l + "self_attn.", {"q", "k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.self_out, linear(l + "self_attn.out_proj", d, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.self_norm, norm(l + "self_attn_layer_norm"));
    MODELPOOL_ASSIGN_OR_RETURN(layer.cross_q, linear(l + "encoder_attn.q_proj", d, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.cross_kv, stacked(l + "encoder_attn.", {"k", "v"}));
    MODELPOOL_ASSIGN_OR_RETURN(layer.cross_out, linear(l + "encoder_attn.out_proj", d, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.cross_norm, norm(l + "encoder_attn_layer_norm"));
    MODELPOOL_ASSIGN_OR_RETURN(layer.fc1, linear(l + "fc1", config.decoder_ffn_dim, d));
    MODELPOOL_ASSIGN_OR_RETURN(layer.fc2, linear(l + "fc2", d, config.decoder_ffn_dim));
    MODELPOOL_ASSIGN_OR_RETURN(layer.final_norm, norm(l + "final_layer_norm"));
    w.decoder.push_back(std::move(layer));
  }
  if (!check_only && device.is_cuda()) AlignHead(config.vocab_size, w);
  return absl::OkStatus();
}

// `act` (not SiLU) as the small-batch linear kernel applies it.
kernels::SmallBatchActivation SmallBatchFormOf(BartActivation act) {
  switch (act) {
    case BartActivation::kRelu:
      return kernels::SmallBatchActivation::kRelu;
    case BartActivation::kGeluTanh:
      return kernels::SmallBatchActivation::kGeluTanh;
    default:
      return kernels::SmallBatchActivation::kGelu;
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const BartWeights>> BartWeights::Load(
    const BartConfig& config, const SafetensorsCheckpoint& checkpoint, c10::Device device,
    at::ScalarType dtype) {
  auto weights = std::make_shared<BartWeights>();
  MODELPOOL_RETURN_IF_ERROR(ReadWeights(config, checkpoint, device, dtype, weights.get()));
  return std::shared_ptr<const BartWeights>(std::move(weights));
}

absl::Status BartWeights::Check(const BartConfig& config, const SafetensorsCheckpoint& checkpoint) {
  return ReadWeights(config, checkpoint, c10::kCPU, at::kFloat, /*out=*/nullptr);
}

int64_t BartWeights::Bytes(const BartConfig& c, at::ScalarType dtype) {
  const int64_t d = c.d_model;
  // Note [Aligned output head]: up to 7 more rows.
  int64_t params = (c.vocab_size + 7) * d * (c.tie_word_embeddings ? 1 : 2) + c.vocab_size;
  params += 2 * ((c.max_position_embeddings + BartConfig::kPositionOffset) * d + 2 * d);
  params += c.encoder_layers * (4 * d * d + 2 * d * c.encoder_ffn_dim + c.encoder_ffn_dim + 9 * d);
  params += c.decoder_layers * (8 * d * d + 2 * d * c.decoder_ffn_dim + c.decoder_ffn_dim + 15 * d);
  return params * static_cast<int64_t>(c10::elementSize(dtype));
}

BartModel::BartModel(const BartConfig& config, std::shared_ptr<const BartWeights> weights,
                     c10::Device device, at::ScalarType dtype, const SummarizerLimits& limits)
    : config_(config),
      device_(device),
      dtype_(dtype),
      limits_(limits),
      weights_(std::move(weights)),
      w_(*weights_),
      fused_(CanFuseEpilogues(device, dtype, config.d_model)),
      caches_(config.decoder_layers, config.decoder_attention_heads,
              config.d_model / config.decoder_attention_heads, limits,
              at::TensorOptions().dtype(dtype).device(device)) {
  TORCH_CHECK(limits.max_input_tokens <= config.max_position_embeddings &&
                  limits.max_new_tokens <= config.max_position_embeddings,
              "BART limits beyond max_position_embeddings");
}

BartModel::~BartModel() = default;

int64_t BartModel::CacheBytes(const BartConfig& c, at::ScalarType dtype,
                              const SummarizerLimits& limits) {
  return DecoderCaches::Bytes(c.decoder_layers, c.decoder_attention_heads,
                              c.d_model / c.decoder_attention_heads, limits,
                              static_cast<int64_t>(c10::elementSize(dtype)));
}

at::Tensor BartModel::Norm(const at::Tensor& x, const BartWeights::LayerNorm& norm) const {
  return at::layer_norm(x, {config_.d_model}, norm.weight, norm.bias, BartConfig::kLayerNormEps);
}

at::Tensor BartModel::AddNorm(at::Tensor y, const at::Tensor& residual,
                              const BartWeights::LayerNorm& norm) const {
  if (fused_) {
    return AddLayerNorm(std::move(y), residual, norm.weight, norm.bias, BartConfig::kLayerNormEps);
  }
  return Norm(y + residual, norm);
}

at::Tensor BartModel::Feed(const at::Tensor& x, const BartWeights::Linear& fc1,
                           const BartWeights::Linear& fc2) const {
  const BartActivation act = config_.activation;
  if (fused_ && act != BartActivation::kSilu) {
    if (auto h = SmallBatchLinearWhereFaster(x, fc1.weight, fc1.bias, SmallBatchFormOf(act))) {
      return Linear(*h, fc2);
    }
    return Linear(LinearActivation(x, fc1.weight, fc1.bias, act != BartActivation::kRelu), fc2);
  }
  at::Tensor h = at::linear(x, fc1.weight, fc1.bias);
  switch (act) {
    case BartActivation::kGelu:
      h = at::gelu(h);
      break;
    case BartActivation::kGeluTanh:
      h = at::gelu(h, "tanh");
      break;
    case BartActivation::kRelu:
      h = at::relu(h);
      break;
    case BartActivation::kSilu:
      h = at::silu(h);
      break;
  }
  return Linear(h, fc2);
}

at::Tensor BartModel::Linear(const at::Tensor& x, const BartWeights::Linear& linear) const {
  if (fused_) {
    if (auto y = SmallBatchLinearWhereFaster(x, linear.weight, linear.bias)) return *std::move(y);
  }
  return at::linear(x, linear.weight, linear.bias);
}

at::Tensor BartModel::Embed(const at::Tensor& ids, const at::Tensor& table,
                            const at::Tensor& positions, int64_t first, int64_t count) const {
  at::Tensor h = at::embedding(table, ids);
  if (config_.scale_embedding) h = h * std::sqrt(static_cast<double>(config_.d_model));
  return h + positions.narrow(0, first + BartConfig::kPositionOffset, count);
}

// Note [BART attention kernels]
// The encoder's attention is chosen here, never left to scaled_dot_product_attention's
// dispatcher, whose cuDNN backend takes a process-wide lock on every launch:
// - flash attention where it runs (CanFlashAttention): its variable-length form over the
//   projections as they lie, each text's keys its first `length` tokens (the input is padded on
//   the right), so that padding is never read;
// - else on CUDA with PyTorch 2, the memory-efficient kernel with the padding as an additive
//   bias;
// - elsewhere matrix products and softmax, scaled after the product as transformers' eager
//   attention does.
// The decoder's attention is the caches' (Note [Decoder attention kernels]).
BartModel::EncoderPadding BartModel::PaddingOf(const at::Tensor& attention_mask) const {
  const int64_t batch = attention_mask.size(0);
  const int64_t length = attention_mask.size(1);
  EncoderPadding padding;
  if (CanFlashAttention(device_, dtype_, config_.d_model / config_.encoder_attention_heads)) {
    padding.starts = EvenStarts(batch, length, device_);
    padding.lengths = attention_mask.sum(1, /*keepdim=*/false, at::kInt);
    return padding;
  }
  const int64_t aligned = (length + 7) / 8 * 8;
  padding.bias =
      at::zeros({batch, 1, 1, aligned}, at::TensorOptions().dtype(dtype_).device(device_))
          .narrow(3, 0, length)
          .masked_fill_(attention_mask.logical_not().view({batch, 1, 1, length}), LowestOf(dtype_));
  return padding;
}

at::Tensor BartModel::EncoderAttention(const at::Tensor& qkv, const EncoderPadding& padding) const {
  const int64_t batch = qkv.size(0), length = qkv.size(1);
  const int64_t d = config_.d_model, heads = config_.encoder_attention_heads;
  const int64_t head_dim = d / heads;
  const double scaling = std::pow(static_cast<double>(head_dim), -0.5);
  if (padding.starts.defined()) {
    const at::Tensor tokens = qkv.view({batch * length, 3, heads, head_dim});
    return FlashAttention(tokens.select(1, 0), tokens.select(1, 1), tokens.select(1, 2),
                          padding.starts, length, padding.starts, length, scaling, padding.lengths)
        .view({batch, length, d});
  }
  const at::Tensor split = qkv.view({batch, length, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  const at::Tensor q = split[0], k = split[1], v = split[2];
  at::Tensor context;
#if TORCH_VERSION_MAJOR >= 2
  const int64_t per_16_bytes = 16 / static_cast<int64_t>(c10::elementSize(dtype_));
  if (device_.is_cuda() && head_dim % per_16_bytes == 0) {
    const at::Tensor full_bias = padding.bias.expand({batch, heads, length, length});
    context = std::get<0>(at::_scaled_dot_product_efficient_attention(
        q, k, v, full_bias, /*compute_log_sumexp=*/false, /*dropout_p=*/0.0, /*is_causal=*/false,
        scaling));
  }
#endif
  if (!context.defined()) {
    context =
        at::matmul(at::softmax(at::matmul(q, k.transpose(-1, -2)) * scaling + padding.bias, -1), v);
  }
  return context.transpose(1, 2).reshape({batch, length, d});
}

at::Tensor BartModel::Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  const int64_t length = input_ids.size(1);
  at::Tensor h = Norm(Embed(input_ids, w_.encoder_embedding, w_.encoder_positions, 0, length),
                      w_.encoder_embedding_norm);
  const EncoderPadding padding = PaddingOf(attention_mask);
  for (const BartWeights::EncoderLayer& layer : w_.encoder) {
    const at::Tensor attention =
        EncoderAttention(at::linear(h, layer.qkv.weight, layer.qkv.bias), padding);
    h = AddNorm(at::linear(attention, layer.out.weight, layer.out.bias), h, layer.self_norm);
    h = AddNorm(Feed(h, layer.fc1, layer.fc2), h, layer.final_norm);
    if (dtype_ == at::kHalf) {
      // As transformers: keep float16 activations finite.
      const double limit = static_cast<double>(std::numeric_limits<c10::Half>::max()) - 1000;
      h = h.clamp(-limit, limit);
    }
  }
  return h;
}

void BartModel::StartDecoding(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                              int64_t num_beams) {
  caches_.Start(attention_mask, num_beams);
  for (size_t i = 0; i < w_.decoder.size(); ++i) {
    const BartWeights::Linear& kv = w_.decoder[i].cross_kv;
    caches_.SetCross(static_cast<int64_t>(i), at::linear(encoder_hidden, kv.weight, kv.bias));
  }
}

at::Tensor BartModel::Step(const at::Tensor& tokens, int64_t position) {
  caches_.Reserve(position + 1);
  return Decode(Embed(tokens, w_.decoder_embedding, w_.decoder_positions, position, 1),
                [&](int64_t layer, const at::Tensor& qkv, double scaling) {
                  return caches_.SelfAttention(layer, qkv, position, scaling, at::Tensor());
                });
}

at::Tensor BartModel::StepAt(const at::Tensor& tokens, const at::Tensor& position) {
  at::Tensor h = at::embedding(w_.decoder_embedding, tokens);
  if (config_.scale_embedding) h = h * std::sqrt(static_cast<double>(config_.d_model));
  h = h + w_.decoder_positions.index_select(0, position + BartConfig::kPositionOffset);
  const DecoderCaches::StepKeys keys = caches_.KeysAt(position);
  return Decode(h, [&](int64_t layer, const at::Tensor& qkv, double scaling) {
    return caches_.SelfAttentionAt(layer, qkv, keys, scaling, at::Tensor());
  });
}

at::Tensor BartModel::Decode(
    at::Tensor h,
    const std::function<at::Tensor(int64_t, const at::Tensor&, double)>& self_attention) {
  const int64_t rows = caches_.rows();
  const int64_t heads = config_.decoder_attention_heads;
  const int64_t head_dim = config_.d_model / heads;
  const double scaling = std::pow(static_cast<double>(head_dim), -0.5);
  h = Norm(h, w_.decoder_embedding_norm);  // [rows, d_model]
  for (size_t i = 0; i < w_.decoder.size(); ++i) {
    const BartWeights::DecoderLayer& layer = w_.decoder[i];
    const int64_t l = static_cast<int64_t>(i);
    const at::Tensor qkv = Linear(h, layer.self_qkv).view({rows, 3, heads, head_dim});
    const at::Tensor attention = self_attention(l, qkv, scaling);
    h = AddNorm(Linear(attention, layer.self_out), h, layer.self_norm);
    const at::Tensor q = Linear(h, layer.cross_q);
    h = AddNorm(Linear(caches_.CrossAttention(l, q, scaling), layer.cross_out), h,
                layer.cross_norm);
    h = AddNorm(Feed(h, layer.fc1, layer.fc2), h, layer.final_norm);
  }
  at::Tensor logits =
      at::linear(h, w_.lm_head).narrow(1, 0, config_.vocab_size);  // Note [Aligned output head]
  if (w_.final_logits_bias.defined()) logits = logits + w_.final_logits_bias;
  return logits.to(at::kFloat);
}

void BartModel::Reorder(const at::Tensor& parents, int64_t length) {
  caches_.Reorder(parents, length);
}

}  // namespace modelpool
