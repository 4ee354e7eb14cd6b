#include "lib/models/bert/bert_encoder.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/zeros.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/base/saturating.h"
#include "lib/models/flash_attention.h"
#include "lib/models/formats/weights.h"
#include "lib/models/fused_ops.h"
#include "lib/models/kernel_switches.h"
#include "modelpool/base/status.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/_efficient_attention_forward.h>
#include <ATen/ops/_scaled_dot_product_efficient_attention.h>
#endif

namespace modelpool {
namespace {

// Note [Attention kernels]
// Which kernel a BERT layer's attention runs on is chosen here, once per encoder, never left
// to the dispatcher of scaled_dot_product_attention: its cuDNN backend takes a lock shared by
// the whole process on every launch, so two workers in one process would wait on each other.
// All three CUDA kernels for packed rows take them with their cumulative lengths (Note
// [Packed batches]): no padding, no mask.
// - kPackedVarlen: our kernel for short rows (Note [Packed short-row attention]), where it
//   runs: float16 or bfloat16, heads of 64 (bert-base and -large, e5, bge) or 32 (MiniLM,
//   bge-small, e5-small), Ampere or later; with heads of 64, only for batches whose rows are
//   at most kPackedLongest tokens, flash attention for the others. The default.
// - kFlashVarlen: flash attention, for the other head sizes (multiples of 8 up to 256) in
//   half precision, PyTorch 2. MODELPOOL_BERT_ATTENTION=flash picks it where ours would run.
// - kEfficientVarlen: the memory-efficient kernel; MODELPOOL_BERT_ATTENTION=efficient picks
//   it where either of the others would run.
// - kEfficientPadded: other CUDA cases (float32), where the head size is a multiple of 16
//   bytes: memory-efficient attention over rows padded to the longest, padding keys masked by
//   an additive bias.
// - kMath: the CPU, libtorch 1.13 (which has neither of libtorch's kernels), and head sizes no
//   kernel takes: matrix products and softmax over padded rows.
// With heads of 64, batches whose longest row is longer take flash attention even where
// kPackedVarlen was chosen. On rows of one length (benchmarks/attention_bench.cc, H200,
// bert-large's heads) ours took 0.06-0.41 of flash attention's time up to 64 tokens, 0.60-0.84
// at 96 to 192, and 1.01, 1.08 and 1.11 times it at 256, 384 and 512, where flash attention's
// larger tiles pay (0.79 at 260, where they do not); on bert-large's embeddings of the bench
// corpus, batches over 192 tokens on flash attention were 0.8% faster than all on ours. With
// heads of 32, ours took 0.05-0.95 of flash attention's time at every length up to 512 (the
// longest rows of MiniLM, bge-small and e5-small; longer rows were not timed).
constexpr int64_t kPackedLongest = 192;

enum class AttentionKernel {
  kPackedVarlen,
  kFlashVarlen,
  kEfficientVarlen,
  kEfficientPadded,
  kMath
};

AttentionKernel ChooseAttention(c10::Device device, c10::ScalarType dtype, int64_t heads,
                                int64_t head_dim) {
#if TORCH_VERSION_MAJOR >= 2
  if (device.is_cuda()) {
    if (CanFlashAttention(device, dtype, head_dim)) {
      switch (ProcessKernelSwitches().bert_attention) {
        case BertAttention::kPacked:
          if (CanPackedSelfAttention(device, dtype, heads, head_dim)) {
            return AttentionKernel::kPackedVarlen;
          }
          return AttentionKernel::kFlashVarlen;
        case BertAttention::kFlash:
          return AttentionKernel::kFlashVarlen;
        case BertAttention::kEfficient:
          return AttentionKernel::kEfficientVarlen;
      }
    }
    const int64_t per_16_bytes = 16 / static_cast<int64_t>(c10::elementSize(dtype));
    if (head_dim % per_16_bytes == 0) return AttentionKernel::kEfficientPadded;
  }
#else
  (void)heads;
#endif
  return AttentionKernel::kMath;
}

const char* KernelName(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::kPackedVarlen:
      return "packed short-row (varlen)";
    case AttentionKernel::kFlashVarlen:
      return "flash (varlen)";
    case AttentionKernel::kEfficientVarlen:
      return "memory-efficient (varlen)";
    case AttentionKernel::kEfficientPadded:
      return "memory-efficient (padded)";
    case AttentionKernel::kMath:
      return "math (padded)";
  }
  return "unknown";
}

constexpr char kWordEmbeddings[] = "embeddings.word_embeddings.weight";
constexpr char kLayerPrefix[] = "encoder.layer.";

// The names a state-dict tensor may have in a checkpoint: TensorFlow-era LayerNorms say
// gamma and beta.
std::vector<std::string> NameVariants(const std::string& prefix, const std::string& name) {
  std::vector<std::string> names = {prefix + name};
  if (absl::EndsWith(name, "LayerNorm.weight")) {
    names.push_back(prefix + name.substr(0, name.size() - 6) + "gamma");
  } else if (absl::EndsWith(name, "LayerNorm.bias")) {
    names.push_back(prefix + name.substr(0, name.size() - 4) + "beta");
  }
  return names;
}

class BertEncoder : public Encoder {
 public:
  struct Layer {
    at::Tensor qkv_weight, qkv_bias;  // [3 * hidden, hidden], [3 * hidden]
    at::Tensor attention_out_weight, attention_out_bias;
    at::Tensor attention_norm_weight, attention_norm_bias;
    at::Tensor intermediate_weight, intermediate_bias;
    at::Tensor out_weight, out_bias;
    at::Tensor out_norm_weight, out_norm_bias;
  };

  BertEncoder(const BertConfig& config, AttentionKernel kernel, bool fused)
      : config_(config), kernel_(kernel), fused_(fused) {}

  at::Tensor Forward(const PackedRows& batch) const override;
  std::string attention_kernel() const override {
    return absl::StrCat(KernelName(kernel_), fused_ ? ", fused epilogues" : "");
  }

  // Set by BertArchitecture::Load.
  at::Tensor word_embeddings;
  // Position embeddings with token type 0's embedding added: inputs here are single texts,
  // all of type 0.
  at::Tensor position_embeddings;
  at::Tensor embedding_norm_weight, embedding_norm_bias;
  std::vector<Layer> layers;

 private:
  // How one batch's attention runs: the encoder's kernel, or flash attention for rows over
  // kPackedLongest (heads of 64), with the row starts and row ids in int32 that the packed
  // kernels take.
  struct BatchAttention {
    AttentionKernel kernel;
    at::Tensor starts, row_ids;
  };
  BatchAttention PlanAttention(const PackedRows& batch) const;
  // The attention context, [tokens, hidden], of the packed `qkv` ([tokens, 3 * hidden]).
  at::Tensor Attention(const at::Tensor& qkv, const PackedRows& batch, const BatchAttention& plan,
                       const at::Tensor& padding_bias) const;
  at::Tensor Activation(const at::Tensor& x) const;
  // Each token's row of the position embeddings.
  at::Tensor Positions(const PackedRows& batch) const;
  // The intermediate projection of `x` with its bias and nonlinearity.
  at::Tensor Intermediate(const at::Tensor& x, const Layer& layer) const;
  // LayerNorm(y + residual), written over `y`.
  at::Tensor AddNorm(at::Tensor y, const at::Tensor& residual, const at::Tensor& weight,
                     const at::Tensor& bias) const;

  const BertConfig config_;
  const AttentionKernel kernel_;
  const bool fused_;  // Note [Fused epilogues]
};

at::Tensor BertEncoder::Forward(const PackedRows& batch) const {
  const int64_t hidden = config_.hidden_size;
  const double eps = config_.layer_norm_eps;
  at::Tensor x = at::embedding(word_embeddings, batch.ids)
                     .add_(at::embedding(position_embeddings, Positions(batch)));
  x = at::layer_norm(x, {hidden}, embedding_norm_weight, embedding_norm_bias, eps);

  // Padded kernels mask padding keys with one additive bias for every layer: [rows, 1, 1, L].
  at::Tensor padding_bias;
  const BatchAttention plan = PlanAttention(batch);  // once a batch, not once a layer
  if (!plan.starts.defined() && batch.tokens != batch.rows * batch.max_length) {
    const int64_t length = batch.max_length;
    const at::Tensor is_padding = at::arange(length, batch.lengths.options())
                                      .unsqueeze(0)
                                      .ge(batch.lengths.unsqueeze(1))
                                      .view({batch.rows, 1, 1, length});
    // The memory-efficient kernel wants the bias's rows 16-element aligned: allocate them so.
    const int64_t aligned = (length + 15) / 16 * 16;
    padding_bias = at::zeros({batch.rows, 1, 1, aligned}, x.options())
                       .narrow(3, 0, length)
                       .masked_fill_(is_padding, -std::numeric_limits<float>::infinity());
  }
  for (const Layer& layer : layers) {
    const at::Tensor qkv = at::linear(x, layer.qkv_weight, layer.qkv_bias);
    const at::Tensor context = Attention(qkv, batch, plan, padding_bias);
    x = AddNorm(at::linear(context, layer.attention_out_weight, layer.attention_out_bias), x,
                layer.attention_norm_weight, layer.attention_norm_bias);
    x = AddNorm(at::linear(Intermediate(x, layer), layer.out_weight, layer.out_bias), x,
                layer.out_norm_weight, layer.out_norm_bias);
  }
  return x;
}

BertEncoder::BatchAttention BertEncoder::PlanAttention(const PackedRows& batch) const {
  BatchAttention plan{kernel_};
  if (kernel_ == AttentionKernel::kPackedVarlen && config_.head_dim() == 64 &&
      batch.max_length > kPackedLongest) {
    plan.kernel = AttentionKernel::kFlashVarlen;
  }
  if (plan.kernel == AttentionKernel::kPackedVarlen ||
      plan.kernel == AttentionKernel::kFlashVarlen ||
      plan.kernel == AttentionKernel::kEfficientVarlen) {
    plan.starts = batch.starts.to(at::kInt);
  }
  if (plan.kernel == AttentionKernel::kPackedVarlen) plan.row_ids = batch.row_ids.to(at::kInt);
  return plan;
}

at::Tensor BertEncoder::Positions(const PackedRows& batch) const {
  if (!config_.positions_skip_padding) {
    return config_.position_offset == 0 ? batch.positions
                                        : batch.positions.add(config_.position_offset);
  }
  // RoBERTa's cumulative count of non-padding tokens, per row of the packed batch: the count
  // over the whole batch less the count before the row's start.
  const at::Tensor counted = batch.ids.ne(config_.pad_token_id).to(at::kLong);
  const at::Tensor running = counted.cumsum(0);
  const at::Tensor before_row =
      running.sub(counted).index_select(0, batch.starts.narrow(0, 0, batch.rows));
  const at::Tensor in_row = running.sub_(before_row.index_select(0, batch.row_ids));
  return in_row.mul_(counted).add_(config_.position_offset - 1);
}

at::Tensor BertEncoder::Intermediate(const at::Tensor& x, const Layer& layer) const {
  const BertActivation act = config_.hidden_act;
  if (fused_ && (act == BertActivation::kGelu || act == BertActivation::kGeluTanh ||
                 act == BertActivation::kRelu)) {
    return LinearActivation(x, layer.intermediate_weight, layer.intermediate_bias,
                            /*gelu=*/act != BertActivation::kRelu);
  }
  return Activation(at::linear(x, layer.intermediate_weight, layer.intermediate_bias));
}

at::Tensor BertEncoder::AddNorm(at::Tensor y, const at::Tensor& residual, const at::Tensor& weight,
                                const at::Tensor& bias) const {
  if (fused_) return AddLayerNorm(std::move(y), residual, weight, bias, config_.layer_norm_eps);
  return at::layer_norm(y.add_(residual), {config_.hidden_size}, weight, bias,
                        config_.layer_norm_eps);
}

at::Tensor BertEncoder::Attention(const at::Tensor& qkv, const PackedRows& batch,
                                  const BatchAttention& plan,
                                  const at::Tensor& padding_bias) const {
  const int64_t hidden = config_.hidden_size, heads = config_.num_attention_heads;
  const int64_t head_dim = hidden / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
#if TORCH_VERSION_MAJOR >= 2
  if (plan.kernel == AttentionKernel::kPackedVarlen) {
    return PackedSelfAttention(qkv, plan.starts, plan.row_ids, heads, scale);
  }
  if (plan.kernel == AttentionKernel::kFlashVarlen) {
    const at::Tensor packed = qkv.view({batch.tokens, 3, heads, head_dim});
    return FlashAttention(packed.select(1, 0), packed.select(1, 1), packed.select(1, 2),
                          plan.starts, batch.max_length, plan.starts, batch.max_length, scale)
        .view({batch.tokens, hidden});
  }
  if (plan.kernel == AttentionKernel::kEfficientVarlen) {
    // One "batch" of all tokens, [1, tokens, heads, head_dim], split by the row starts.
    const at::Tensor packed = qkv.view({1, batch.tokens, 3, heads, head_dim});
    return std::get<0>(at::_efficient_attention_forward(
                           packed.select(2, 0), packed.select(2, 1), packed.select(2, 2),
                           /*bias=*/std::nullopt, plan.starts, plan.starts, batch.max_length,
                           batch.max_length, /*dropout_p=*/0.0, /*custom_mask_type=*/0,
                           /*compute_log_sumexp=*/false, scale))
        .view({batch.tokens, hidden});
  }
#endif
  // Padded kernels: every row takes max_length slots; when no row is shorter, the packed rows
  // already are that layout.
  const int64_t rows = batch.rows, length = batch.max_length;
  const bool padded = padding_bias.defined();
  at::Tensor slots;  // [tokens]: each token's place among rows * length
  at::Tensor grid = qkv;
  if (padded) {
    slots = batch.row_ids.mul(length).add_(batch.positions);
    grid = at::zeros({rows * length, 3 * hidden}, qkv.options()).index_copy_(0, slots, qkv);
  }
  // [3, rows, heads, length, head_dim]
  const at::Tensor split = grid.view({rows, length, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  const at::Tensor q = split[0], k = split[1], v = split[2];
  at::Tensor context;
#if TORCH_VERSION_MAJOR >= 2
  if (plan.kernel == AttentionKernel::kEfficientPadded) {
    std::optional<at::Tensor> bias;
    if (padded) bias = padding_bias.expand({rows, heads, length, length});
    context = std::get<0>(
        at::_scaled_dot_product_efficient_attention(q, k, v, bias, /*compute_log_sumexp=*/false,
                                                    /*dropout_p=*/0.0, /*is_causal=*/false, scale));
  }
#endif
  if (!context.defined()) {
    at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(scale);
    if (padded) scores.add_(padding_bias);
    context = at::matmul(at::softmax(scores, -1), v);
  }
  context = context.transpose(1, 2).reshape({rows * length, hidden});
  return padded ? context.index_select(0, slots) : context;
}

at::Tensor BertEncoder::Activation(const at::Tensor& x) const {
  switch (config_.hidden_act) {
    case BertActivation::kGelu:
      return at::gelu(x);
    case BertActivation::kGeluTanh:
      return at::gelu(x, "tanh");
    case BertActivation::kRelu:
      return at::relu(x);
    case BertActivation::kSilu:
      return at::silu(x);
  }
  return x;
}

}  // namespace

BertArchitecture::BertArchitecture(BertConfig config, std::vector<std::string> prefixes)
    : config_(std::move(config)), prefixes_(std::move(prefixes)) {
  shape_ = {.vocab_size = config_.vocab_size,
            .hidden_size = config_.hidden_size,
            .max_positions = config_.max_positions(),
            .pad_token_id = config_.pad_token_id};
}

absl::StatusOr<std::unique_ptr<EncoderArchitecture>> BertArchitecture::Read(
    const JsonFile& config) {
  MODELPOOL_ASSIGN_OR_RETURN(BertConfig bert, ReadBertConfig(config));
  return std::make_unique<BertArchitecture>(std::move(bert), std::vector<std::string>{"", "bert."});
}

absl::Status BertArchitecture::Bind(const SafetensorsCheckpoint& checkpoint,
                                    const std::string& checkpoint_dir) {
  // The prefix is the first one under which the word embeddings are found.
  std::string prefix = prefixes_.front();
  for (const std::string& candidate : prefixes_) {
    if (checkpoint.Find(candidate + kWordEmbeddings).tensor != nullptr) {
      prefix = candidate;
      break;
    }
  }
  prefix_ = prefix;
  // Before anything is built per layer: num_hidden_layers comes from a file.
  const int64_t stored_layers = checkpoint.NumBlocks(prefix + kLayerPrefix);
  if (config_.num_hidden_layers > stored_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        checkpoint_dir, ": config.json has num_hidden_layers ", config_.num_hidden_layers,
        ", but the weights hold ", stored_layers, " layers (", prefix, kLayerPrefix, "N.)"));
  }
  const std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = BertTensors(config_);
  stored_names_.clear();
  for (const auto& [name, shape] : tensors) {
    const std::vector<std::string> variants = NameVariants(prefix, name);
    std::string stored = variants.front();
    for (const std::string& variant : variants) {
      if (checkpoint.Find(variant).tensor != nullptr) {
        stored = variant;
        break;
      }
    }
    const SafetensorsCheckpoint::Entry entry = checkpoint.Find(stored);
    if (entry.tensor == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("the weights in ", checkpoint_dir, " have no tensor '", stored, "'"));
    }
    if (absl::Status valid = CheckTensor(checkpoint, stored, shape); !valid.ok()) {
      return absl::Status(valid.code(), absl::StrCat(entry.file->path(), ": ", valid.message(),
                                                     " (from config.json)"));
    }
    stored_names_[name] = stored;
  }
  return absl::OkStatus();
}

std::vector<std::string> BertArchitecture::UnusedTensors(
    const SafetensorsCheckpoint& checkpoint) const {
  std::set<std::string> used;
  for (const auto& [name, stored] : stored_names_) used.insert(stored);
  // Only the encoder's own tensors: a checkpoint of a BertFor* head also holds the head's, and
  // every BertModel checkpoint holds the pooler, which embeddings do not use.
  std::vector<std::string> unused;
  for (const std::string& name : checkpoint.names()) {
    const bool encoder_tensor = absl::StartsWith(name, prefix_ + "encoder.") ||
                                (absl::StartsWith(name, prefix_ + "embeddings.") &&
                                 name != prefix_ + "embeddings.position_ids");
    if (encoder_tensor && !used.contains(name)) unused.push_back(name);
  }
  return unused;
}

int64_t BertArchitecture::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, shape] : BertTensors(config_)) {
    int64_t size = 1;
    for (int64_t d : shape) size *= d;
    n += size;
  }
  return n;
}

int64_t BertArchitecture::WorkspaceBytes(int64_t tokens, int64_t element_bytes) const {
  // The fused QKV output, the attention context, the residual stream twice and the
  // intermediate activation before and after the nonlinearity.
  // Saturating: `tokens` is a limit a user gave.
  return SaturatingProduct({tokens,
                            SaturatingSum({SaturatingMul(6, config_.hidden_size),
                                           SaturatingMul(2, config_.intermediate_size)}),
                            element_bytes});
}

std::shared_ptr<const Encoder> BertArchitecture::Load(const SafetensorsCheckpoint& checkpoint,
                                                      c10::Device device,
                                                      c10::ScalarType dtype) const {
  TORCH_CHECK(!stored_names_.empty(), "BertArchitecture::Load before Bind");
  auto encoder = std::make_shared<BertEncoder>(
      config_, ChooseAttention(device, dtype, config_.num_attention_heads, config_.head_dim()),
      CanFuseEpilogues(device, dtype, config_.hidden_size));
  const c10::Device host(c10::DeviceType::CPU);
  auto read = [&](const std::string& name, c10::ScalarType type, c10::Device where) {
    absl::StatusOr<at::Tensor> tensor = ReadTensor(checkpoint, stored_names_.at(name), type, where);
    TORCH_CHECK(tensor.ok(), std::string(tensor.status().message()));
    return *std::move(tensor);
  };
  auto load = [&](const std::string& name) { return read(name, dtype, device); };
  // Query, key and value are joined on the host, so the device holds only the fused matrix.
  auto fused = [&](const std::string& prefix, const std::string& suffix) {
    return at::cat({read(prefix + "query." + suffix, dtype, host),
                    read(prefix + "key." + suffix, dtype, host),
                    read(prefix + "value." + suffix, dtype, host)})
        .to(device);
  };
  encoder->word_embeddings = load("embeddings.word_embeddings.weight");
  encoder->position_embeddings =
      read("embeddings.position_embeddings.weight", at::kFloat, host)
          .add(read("embeddings.token_type_embeddings.weight", at::kFloat, host).select(0, 0))
          .to(device, dtype);
  encoder->embedding_norm_weight = load("embeddings.LayerNorm.weight");
  encoder->embedding_norm_bias = load("embeddings.LayerNorm.bias");
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("encoder.layer.", l, ".");
    BertEncoder::Layer layer;
    layer.qkv_weight = fused(p + "attention.self.", "weight");
    layer.qkv_bias = fused(p + "attention.self.", "bias");
    layer.attention_out_weight = load(p + "attention.output.dense.weight");
    layer.attention_out_bias = load(p + "attention.output.dense.bias");
    layer.attention_norm_weight = load(p + "attention.output.LayerNorm.weight");
    layer.attention_norm_bias = load(p + "attention.output.LayerNorm.bias");
    layer.intermediate_weight = load(p + "intermediate.dense.weight");
    layer.intermediate_bias = load(p + "intermediate.dense.bias");
    layer.out_weight = load(p + "output.dense.weight");
    layer.out_bias = load(p + "output.dense.bias");
    layer.out_norm_weight = load(p + "output.LayerNorm.weight");
    layer.out_norm_bias = load(p + "output.LayerNorm.bias");
    encoder->layers.push_back(std::move(layer));
  }
  return encoder;
}

}  // namespace modelpool
