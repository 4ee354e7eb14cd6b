#ifndef MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_
#define MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/models/formats/safetensors.h"

namespace modelpool {

enum class BertActivation { kGelu, kGeluTanh, kRelu, kSilu };

// The `config.json` fields of a BertModel that the encoder uses.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  BertActivation hidden_act = BertActivation::kGelu;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

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
// A BERT-family embedding model folder, read and checked once: the encoder's configuration,
// the sentence-transformers modules (pooling, normalization, maximum length) and the weights,
// memory-mapped, whose names and shapes have been checked against the configuration.
// Immutable: shared by every instance of the model.
struct EmbeddingModelFiles {
  std::string model_dir;
  // The folder's last component, for messages.
  std::string name;
  // Where config.json and the weights are: the Transformer module's folder.
  std::string transformer_dir;
  BertConfig config;
  PoolingConfig pooling;
  bool normalize = false;
  // Texts are cut to this many ids, special tokens included.
  int64_t max_seq_length = 0;
  std::shared_ptr<const SafetensorsCheckpoint> checkpoint;
  // What weight names start with in the checkpoint: "" or "bert.".
  std::string tensor_prefix;

  int64_t dimension() const { return pooling.num_modes() * config.hidden_size; }
  // Numbers in the weights the encoder uses.
  int64_t num_parameters() const;
  // What the checkpoint calls `name` (a name of BertModel's state dict): with the prefix, and
  // with LayerNorm's TensorFlow-era gamma and beta where the checkpoint has those.
  std::string TensorName(const std::string& name) const;
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
// tensor of the wrong shape, `FailedPrecondition` for pickled weights.
absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> ReadEmbeddingModelFiles(
    const std::string& model_dir);

// `InvalidArgument` unless a batch of `max_batch_tokens` ids holds one text of the longest.
absl::Status CheckMaxBatchTokens(const EmbeddingModelFiles& files, int64_t max_batch_tokens);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_EMBEDDING_MODEL_FILES_H_
