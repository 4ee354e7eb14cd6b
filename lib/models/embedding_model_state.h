#ifndef MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_
#define MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "lib/models/bert/bert_encoder.h"
#include "lib/models/embedding_model_files.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/text/tokenizer.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace modelpool {

// What one `EmbeddingModel` holds. The tensor side (ids to vectors) is in embedding_model.cc,
// the text side (prompts, tokenization) in embedding_model_text.cc.
struct EmbeddingModel::State {
  std::shared_ptr<const EmbeddingModelFiles> files;
  std::shared_ptr<const Tokenizer> tokenizer;  // null: ids only
  std::unique_ptr<BertEncoder> encoder;
  Device device;
  DType dtype = DType::kFloat32;
  int64_t max_batch_tokens = 0;
#ifdef MODELPOOL_TORCH_CUDA
  // The instance's own stream, so instances on one GPU overlap.
  std::optional<c10::cuda::CUDAStream> stream;
#endif
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_
