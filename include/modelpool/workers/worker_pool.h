#ifndef MODELPOOL_WORKERS_WORKER_POOL_H_
#define MODELPOOL_WORKERS_WORKER_POOL_H_

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/managers/embedding_model_manager.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "modelpool/workers/ordered_stream.h"

namespace modelpool {

// One embedding request: texts in, one vector per text out. Or, instead of texts, rows of
// token ids as `EmbeddingModel::EmbedIds()` takes them (giving both is `InvalidArgument`).
// Requests of one model with equal options (and no `on_progress`) may run together (see
// `WorkerSettings::batch_window`).
struct EmbedRequest {
  std::vector<std::string> texts;
  EmbedOptions options;
  std::vector<std::vector<int32_t>> token_ids;
};

// One summarization request. Requests of one model with equal options may run together.
struct SummarizeRequest {
  std::vector<std::string> texts;
  GenerationOptions options;
};

// How a whole corpus is spread over the workers.
struct CorpusOptions {
  SubmitOptions submit;
  // Called on the calling thread as parts of the corpus finish, with texts done and in all.
  std::function<void(int64_t done, int64_t total)> on_progress;
  // Texts per request; 0 picks a size that gives every worker several requests.
  int64_t texts_per_request = 0;
};

// A stream of texts in, one vector per text out, in order (see `OrderedStream`).
using EmbeddingStream = OrderedStream<EmbeddingModel, std::string, std::vector<float>>;

// WorkerPool
//
// `GenericWorkerPool` for the SDK's embedding and summarization managers: single requests (with
// priority classes, deadlines and job ids), batches in order, whole corpora spread over every
// GPU, and streams. Register managers with `RegisterModel(id, manager)`; models load when first
// asked for and unload when idle. Thread-safe.
//
// Example:
//   auto workers = WorkerPool::Create();
//   (*workers)->RegisterModel<EmbeddingModel>("mxbai", embedder);
//   auto vectors = (*workers)->Embed("mxbai", corpus, {.on_progress = bar});
class WorkerPool : public GenericWorkerPool {
 public:
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(WorkerPoolOptions options = {});

  // One request to a worker of `model_id`; the future holds its result. Unset
  // `options.tokens` are estimated from the texts.
  std::future<absl::StatusOr<Embeddings>> Submit(const std::string& model_id, EmbedRequest request,
                                                 const SubmitOptions& options = {});
  std::future<absl::StatusOr<std::vector<std::string>>> Submit(const std::string& model_id,
                                                               SummarizeRequest request,
                                                               const SubmitOptions& options = {});

  // As `Submit()`, with the job's id for `Poll()`, `Wait()` and `Cancel()`.
  using GenericWorkerPool::SubmitJob;
  JobHandle<Embeddings> SubmitJob(const std::string& model_id, EmbedRequest request,
                                  const SubmitOptions& options = {});
  JobHandle<std::vector<std::string>> SubmitJob(const std::string& model_id,
                                                SummarizeRequest request,
                                                const SubmitOptions& options = {});

  // WorkerPool::EmbedBatches()
  //
  // Each batch as one request, spread over the workers; results in the batches' order. The
  // first failed batch's error is returned.
  absl::StatusOr<std::vector<Embeddings>> EmbedBatches(
      const std::string& model_id, std::vector<std::vector<std::string>> batches,
      const EmbedOptions& embed = {}, const CorpusOptions& options = {});

  // WorkerPool::Embed()
  //
  // The vectors of a whole corpus, one row per text in input order. The texts are grouped by
  // length into requests spread over every worker of the model (every GPU).
  absl::StatusOr<Embeddings> Embed(const std::string& model_id,
                                   absl::Span<const std::string> corpus,
                                   const CorpusOptions& options = {},
                                   const EmbedOptions& embed = {});

  // WorkerPool::Summarize()
  //
  // A summary per text, in input order, with requests spread over every worker of the model.
  absl::StatusOr<std::vector<std::string>> Summarize(const std::string& model_id,
                                                     absl::Span<const std::string> texts,
                                                     const GenerationOptions& generation = {},
                                                     const CorpusOptions& options = {});

  // WorkerPool::StreamEmbeddings()
  //
  // A stream that embeds texts as they are pushed and yields their vectors in order, in
  // batches of about `options.max_batch_cost` tokens (estimated from bytes), with at most
  // `options.max_in_flight` texts held. The pool must outlive the stream.
  std::unique_ptr<EmbeddingStream> StreamEmbeddings(const std::string& model_id,
                                                    StreamOptions options = {},
                                                    const EmbedOptions& embed = {});

 protected:
  // One short text, which must give one finite vector (one summary).
  std::shared_ptr<const workers_internal::RunFn> DefaultProbe(std::type_index type) const override;

 private:
  struct Merging;  // lib/workers/worker_pool_merging.h

  WorkerPool();

  // A request as a job; `on_end` (when set) gets its result first.
  JobHandle<Embeddings> EmbedJob(
      const std::string& model_id, std::shared_ptr<const EmbedRequest> request,
      SubmitOptions options, std::shared_ptr<workers_internal::Completions> completions,
      size_t index, std::function<void(const absl::StatusOr<Embeddings>&)> on_end = nullptr);
  JobHandle<std::vector<std::string>> SummarizeJob(
      const std::string& model_id, std::shared_ptr<const SummarizeRequest> request,
      SubmitOptions options, std::shared_ptr<workers_internal::Completions> completions,
      size_t index,
      std::function<void(const absl::StatusOr<std::vector<std::string>>&)> on_end = nullptr);

  // Identical requests in flight, by content (see `SubmitOptions::merge_identical`).
  const std::shared_ptr<Merging> merging_;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_WORKER_POOL_H_
