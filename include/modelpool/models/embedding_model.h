#ifndef MODELPOOL_MODELS_EMBEDDING_MODEL_H_
#define MODELPOOL_MODELS_EMBEDDING_MODEL_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"

namespace modelpool {

class Tokenizer;
struct EmbeddingModelFiles;

struct EmbedOptions {
  // Whether vectors are scaled to unit length; unset: as the model folder says (a Normalize
  // module in `modules.json`).
  std::optional<bool> normalize;
  // Text put before every input, as sentence-transformers' `prompt` does, for instance
  // mxbai-embed-large-v1's query prompt
  // "Represent this sentence for searching relevant passages: ". Texts only, not ids.
  std::string prompt;
  // The most ids in one forward pass; 0 means the instance's own limit (the manager's
  // `max_batch_tokens`, which its memory was planned for). More than that is `InvalidArgument`.
  int64_t max_batch_tokens = 0;
  // Called on the calling thread after each batch is handed to the device, with the number
  // of texts handed over so far and the total.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

// Embeddings
//
// The vectors of a batch of texts, one row per text, in input order.
struct Embeddings {
  // [texts, dimension] float32, contiguous, on the CPU.
  at::Tensor tensor;
  // Ids the model read, special tokens included, padding not.
  int64_t num_tokens = 0;
  // Texts cut at the model's maximum length.
  int64_t num_truncated = 0;
  // Per row, the ids the model read (they add up to `num_tokens`); and the rows whose texts
  // were cut, in order (`num_truncated` of them).
  std::vector<int64_t> row_tokens;
  std::vector<int64_t> truncated_rows;

  int64_t size() const { return tensor.defined() ? tensor.size(0) : 0; }
  int64_t dimension() const { return tensor.defined() ? tensor.size(1) : 0; }
  // Row `i` of `tensor`, without a copy; valid while `tensor` is.
  absl::Span<const float> operator[](int64_t i) const;
  // Every row as its own vector (a copy).
  std::vector<std::vector<float>> vectors() const;
};

// EmbeddingModel
//
// One instance of a sentence embedding model (BERT family) on one device: its own stream and
// workspace, with the encoder's weights on that device and the folder's pooling,
// normalization and tokenizer shared with the model's other instances. Instances come from
// an `EmbeddingModelManager`; one thread uses an instance at a time (a lease gives that).
//
// See Note [Embedding batches] in embedding_model.cc for how a call is split into batches.
class EmbeddingModel {
 public:
  EmbeddingModel(const EmbeddingModel&) = delete;
  EmbeddingModel& operator=(const EmbeddingModel&) = delete;
  ~EmbeddingModel();

  // EmbeddingModel::Embed()
  //
  // The vectors of `texts`, each cut at `max_seq_length()` ids. `FailedPrecondition` if the
  // instance has no tokenizer, `ResourceExhausted` if the device ran out of memory,
  // `Internal` for other failures of the device.
  absl::StatusOr<Embeddings> Embed(absl::Span<const std::string> texts,
                                   const EmbedOptions& options = {});

  // EmbeddingModel::EmbedIds()
  //
  // The vectors of texts already turned into ids ([CLS] ... [SEP]). `InvalidArgument` for an
  // empty row, a row longer than `max_seq_length()`, an id outside the vocabulary, a prompt in
  // `options`, or `options.max_batch_tokens` over the instance's limit; fails otherwise as
  // `Embed()`.
  absl::StatusOr<Embeddings> EmbedIds(absl::Span<const std::vector<int32_t>> ids,
                                      const EmbedOptions& options = {});

  int64_t dimension() const;
  int64_t max_seq_length() const;
  int64_t max_batch_tokens() const;
  const Device& device() const;
  // The type the encoder computes in.
  DType dtype() const;

 private:
  struct State;
  explicit EmbeddingModel(std::unique_ptr<State> state);
  // lib/models/embedding_model_state.h
  friend absl::StatusOr<std::unique_ptr<EmbeddingModel>> LoadEmbeddingModel(
      std::shared_ptr<const EmbeddingModelFiles> files, std::shared_ptr<const Tokenizer> tokenizer,
      const Device& device, DType dtype, int64_t max_batch_tokens);

  // `EmbedIds()` without the prompt check; the first `skip_prefix_tokens` ids of each row stay
  // out of pooling (a prompt, for folders whose pooling excludes it).
  absl::StatusOr<Embeddings> EmbedEncoded(absl::Span<const std::vector<int32_t>> ids,
                                          const EmbedOptions& options, int64_t skip_prefix_tokens);

  std::unique_ptr<State> state_;
};

}  // namespace modelpool

#endif  // MODELPOOL_MODELS_EMBEDDING_MODEL_H_
