#ifndef MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_
#define MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "lib/models/embedding_model_files.h"
#include "lib/models/encoder.h"
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
  // The weights on `device`, shared with the model's other instances there.
  std::shared_ptr<const Encoder> encoder;
  Device device;
  DType dtype = DType::kFloat32;
  int64_t max_batch_tokens = 0;
#ifdef MODELPOOL_TORCH_CUDA
  // The instance's own stream, so instances on one GPU overlap.
  std::optional<c10::cuda::CUDAStream> stream;
#endif
};

// Bytes of the encoder's weights on a device in `dtype`, shared by the model's instances
// there, and bytes of one instance's workspace for batches of `max_batch_tokens` ids.
int64_t EncoderWeightBytes(const EmbeddingModelFiles& files, DType dtype);
int64_t EmbeddingWorkspaceBytes(const EmbeddingModelFiles& files, DType dtype,
                                int64_t max_batch_tokens);

// LoadEmbeddingModel()
//
// An instance of the model in `files` on `device` computing in `dtype` (float16 on the CPU
// computes in float32), sharing the encoder's weights with the model's other instances there.
// `tokenizer` may be null: the instance then takes ids only. On a GPU the instance runs one
// warm-up batch of `max_batch_tokens` before returning, so the memory it will use is held from
// then on. `InvalidArgument` if `max_batch_tokens` cannot hold one text of the longest.
absl::StatusOr<std::unique_ptr<EmbeddingModel>> LoadEmbeddingModel(
    std::shared_ptr<const EmbeddingModelFiles> files, std::shared_ptr<const Tokenizer> tokenizer,
    const Device& device, DType dtype, int64_t max_batch_tokens);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_STATE_H_
