#ifndef MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_
#define MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/encoder.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/shared_per_device.h"

namespace modelpool {

// How token vectors become one vector per text, as sentence-transformers' Pooling module
// says. Several modes may be on; their vectors are concatenated in the order of the fields.
struct PoolingConfig {
  bool cls = false;
  bool max = false;
  bool mean = false;
  bool mean_sqrt_len = false;
  bool last_token = false;
  // Whether a prompt's tokens take part in pooling (`include_prompt`).
  bool include_prompt = true;

  int num_modes() const { return cls + max + mean + mean_sqrt_len + last_token; }
};

// EmbeddingModelFiles
//
// An embedding model folder, read and checked once: the encoder's architecture (chosen by
// `model_type`), the sentence-transformers modules (pooling, normalization, maximum length)
// and the weights, memory-mapped, whose names and shapes have been checked against the
// configuration. Shared by every instance of the model, which also share the encoder's
// weights on each device (`LoadEncoder`). Thread-safe.
struct EmbeddingModelFiles {
  std::string model_dir;
  // What messages call the model: the name it was asked for by, else the folder's last
  // component.
  std::string name;
  // Where config.json and the weights are: the Transformer module's folder.
  std::string transformer_dir;
  std::shared_ptr<const EncoderArchitecture> encoder;
  PoolingConfig pooling;
  bool normalize = false;
  // Texts are cut to this many ids, special tokens included.
  int64_t max_seq_length = 0;
  std::shared_ptr<const SafetensorsCheckpoint> checkpoint;

  int64_t dimension() const { return pooling.num_modes() * encoder->shape().hidden_size; }

  // The encoder's weights on `device` in `dtype`: loaded by the first instance there and
  // shared by the others while any holds them. Throws `c10::Error` as the load does.
  absl::StatusOr<std::shared_ptr<const Encoder>> LoadEncoder(c10::Device device,
                                                             c10::ScalarType dtype) const;

  std::shared_ptr<SharedPerDevice<Encoder>> loaded_encoders =
      std::make_shared<SharedPerDevice<Encoder>>();
};

// ReadEmbeddingModelConfig()
//
// Everything `ReadEmbeddingModelFiles()` reads but the weights (`checkpoint` stays null).
absl::StatusOr<EmbeddingModelFiles> ReadEmbeddingModelConfig(const std::string& model_dir);

// ReadEmbeddingModelFiles()
//
// Reads `model_dir`: `modules.json` and the modules it names (the Transformer folder, whose
// `config.json` and weights make the encoder; Pooling; Normalize), `sentence_bert_config.json`.
// A folder without `modules.json` gets mean pooling and no normalization, as
// sentence-transformers gives it, and says so in the log. Errors name the file and the field:
// `NotFound` for a missing file or tensor, `InvalidArgument` for a bad or unsupported value or a
// tensor of the wrong shape, `FailedPrecondition` for pickled weights. Tensors of the encoder
// that the configuration does not use (more layers than it says) are named in a warning.
// `name` is what messages call the model (the folder's last component when empty).
absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> ReadEmbeddingModelFiles(
    const std::string& model_dir, const std::string& name = "");

// `InvalidArgument` unless a batch of `max_batch_tokens` ids holds one text of the longest,
// and the workspace of such a batch is below `kMaxInstanceBytes`.
absl::Status CheckMaxBatchTokens(const EmbeddingModelFiles& files, int64_t max_batch_tokens);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_
