#ifndef MODELPOOL_LIB_WORKERS_WORKER_POOL_CALLS_H_
#define MODELPOOL_LIB_WORKERS_WORKER_POOL_CALLS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/models/summarization_model.h"
#include "modelpool/workers/internal/model_backend.h"
#include "modelpool/workers/internal/model_call.h"
#include "modelpool/workers/worker_pool.h"

namespace modelpool::workers_internal {

// How `WorkerPool`'s requests call their models: a batch that runs out of device memory is
// split and retried down to single rows (Note [Out of memory in a batch]); a text that does not
// fit alone fails the request with `ResourceExhausted` naming it.
absl::StatusOr<Embeddings> EmbedSplitting(EmbeddingModel& model, const EmbedRequest& request,
                                          ModelCall& call);
absl::StatusOr<std::vector<std::string>> SummarizeSplitting(SummarizationModel& model,
                                                            const SummarizeRequest& request,
                                                            ModelCall& call);

// The deep checks of embedding and summarization models: one short text, which must give one
// finite vector (one summary).
std::shared_ptr<const RunFn> EmbeddingProbe();
std::shared_ptr<const RunFn> SummarizationProbe();

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_WORKER_POOL_CALLS_H_
