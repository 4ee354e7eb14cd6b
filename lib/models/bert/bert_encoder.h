#ifndef MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_
#define MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>
#include <vector>

#include "lib/models/embedding_model_files.h"

namespace modelpool {

// BertEncoder
//
// BERT's embeddings and transformer layers (Hugging Face's BertModel without the pooler),
// written with ATen ops, on one device in one compute type. Inference only: call it under
// `c10::InferenceMode`. Methods throw `c10::Error` as ATen does; callers convert at the API
// boundary. Const after loading.
class BertEncoder {
 public:
  // Copies the encoder's weights from `files` to `device` in `dtype` (converted on the host, so
  // the device holds nothing else). Query, key and value are fused into one matrix.
  static std::unique_ptr<BertEncoder> Load(const EmbeddingModelFiles& files, c10::Device device,
                                           c10::ScalarType dtype);

  // The last hidden states, [batch, length, hidden], of `ids` ([batch, length] int64 on the
  // device, each row padded on the right to `length`), whose rows have `lengths` ([batch]
  // int64 on the device) tokens. With `padded` false every row is `length` long and attention
  // runs without a mask.
  at::Tensor Forward(const at::Tensor& ids, const at::Tensor& lengths, bool padded) const;

  c10::ScalarType dtype() const { return dtype_; }

 private:
  struct Layer {
    at::Tensor qkv_weight, qkv_bias;  // [3 * hidden, hidden], [3 * hidden]
    at::Tensor attention_out_weight, attention_out_bias;
    at::Tensor attention_norm_weight, attention_norm_bias;
    at::Tensor intermediate_weight, intermediate_bias;
    at::Tensor out_weight, out_bias;
    at::Tensor out_norm_weight, out_norm_bias;
  };

  BertEncoder() = default;
  at::Tensor Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& mask) const;
  at::Tensor Activation(const at::Tensor& x) const;

  BertConfig config_;
  c10::ScalarType dtype_ = c10::ScalarType::Float;
  at::Tensor word_embeddings_;
  // Position embeddings with token type 0's embedding added: BERT's inputs here are single
  // texts, all of type 0.
  at::Tensor position_embeddings_;
  at::Tensor embedding_norm_weight_, embedding_norm_bias_;
  std::vector<Layer> layers_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_BERT_BERT_ENCODER_H_
