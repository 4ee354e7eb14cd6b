#include "lib/models/bert/bert_encoder.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/zeros.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/models/formats/weights.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/scaled_dot_product_attention.h>
#else
#include <ATen/ops/matmul.h>
#include <ATen/ops/softmax.h>
#endif

namespace modelpool {

std::unique_ptr<BertEncoder> BertEncoder::Load(const EmbeddingModelFiles& files, c10::Device device,
                                               c10::ScalarType dtype) {
  auto encoder = std::unique_ptr<BertEncoder>(new BertEncoder());
  encoder->config_ = files.config;
  encoder->dtype_ = dtype;
  const c10::Device host(c10::DeviceType::CPU);
  // Names and shapes were checked when the folder was read.
  auto read = [&](const std::string& name, c10::ScalarType type, c10::Device where) {
    absl::StatusOr<at::Tensor> tensor =
        ReadTensor(*files.checkpoint, files.TensorName(name), type, where);
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

  encoder->word_embeddings_ = load("embeddings.word_embeddings.weight");
  encoder->position_embeddings_ =
      read("embeddings.position_embeddings.weight", at::kFloat, host)
          .add(read("embeddings.token_type_embeddings.weight", at::kFloat, host).select(0, 0))
          .to(device, dtype);
  encoder->embedding_norm_weight_ = load("embeddings.LayerNorm.weight");
  encoder->embedding_norm_bias_ = load("embeddings.LayerNorm.bias");
  for (int64_t l = 0; l < files.config.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("encoder.layer.", l, ".");
    Layer layer;
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
    encoder->layers_.push_back(std::move(layer));
  }
  return encoder;
}

at::Tensor BertEncoder::Forward(const at::Tensor& ids, const at::Tensor& lengths,
                                bool padded) const {
  const int64_t batch = ids.size(0), length = ids.size(1);
  const int64_t hidden = config_.hidden_size, heads = config_.num_attention_heads;
  const double eps = config_.layer_norm_eps;

  // Tokens stay a [batch * length, hidden] matrix between layers, so every projection is one
  // GEMM with its bias fused.
  at::Tensor x =
      at::embedding(word_embeddings_, ids).add_(position_embeddings_.narrow(0, 0, length));
  x = at::layer_norm(x.view({batch * length, hidden}), {hidden}, embedding_norm_weight_,
                     embedding_norm_bias_, eps);

  at::Tensor mask;  // added to attention scores: 0 for tokens, -inf for padding keys
  if (padded) {
    const at::Tensor is_padding =
        at::arange(length, lengths.options()).unsqueeze(0).ge(lengths.unsqueeze(1));
    mask = at::zeros({batch, 1, 1, length}, x.options())
               .masked_fill_(is_padding.view({batch, 1, 1, length}),
                             -std::numeric_limits<float>::infinity());
  }
  for (const Layer& layer : layers_) {
    const at::Tensor qkv = at::linear(x, layer.qkv_weight, layer.qkv_bias)
                               .view({batch, length, 3, heads, hidden / heads})
                               .permute({2, 0, 3, 1, 4});  // [3, batch, heads, length, head_dim]
    const at::Tensor context =
        Attention(qkv[0], qkv[1], qkv[2], mask).transpose(1, 2).reshape({batch * length, hidden});
    x = at::layer_norm(
        at::linear(context, layer.attention_out_weight, layer.attention_out_bias).add_(x), {hidden},
        layer.attention_norm_weight, layer.attention_norm_bias, eps);
    const at::Tensor intermediate =
        Activation(at::linear(x, layer.intermediate_weight, layer.intermediate_bias));
    x = at::layer_norm(at::linear(intermediate, layer.out_weight, layer.out_bias).add_(x), {hidden},
                       layer.out_norm_weight, layer.out_norm_bias, eps);
  }
  return x.view({batch, length, hidden});
}

at::Tensor BertEncoder::Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask) const {
#if TORCH_VERSION_MAJOR >= 2
  // Flash attention when there is no mask; memory-efficient attention with one.
  if (mask.defined()) return at::scaled_dot_product_attention(q, k, v, mask);
  return at::scaled_dot_product_attention(q, k, v);
#else
  // libtorch 1.13 has no public fused attention.
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(1.0 / std::sqrt(q.size(-1)));
  if (mask.defined()) scores.add_(mask);
  return at::matmul(at::softmax(scores, -1), v);
#endif
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

}  // namespace modelpool
