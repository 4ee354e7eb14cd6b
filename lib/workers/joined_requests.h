#ifndef MODELPOOL_LIB_WORKERS_JOINED_REQUESTS_H_
#define MODELPOOL_LIB_WORKERS_JOINED_REQUESTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "modelpool/workers/worker_pool.h"

namespace modelpool::workers_internal {

// The `WorkerPool`'s embedding and summarization requests as `Joinable`s (see Note [Joined
// requests] in scheduler_join.cc): requests whose keys are equal ask for the same options and
// run as one call; each gets its own rows back. When the call fails, each request runs alone,
// so that one request's bad input fails only that request.

// Equal for requests that may run together; it names every option.
std::string JoinKey(const EmbedRequest& request);
std::string JoinKey(const SummarizeRequest& request);

// One result per request, in order.
std::vector<absl::StatusOr<Embeddings>> EmbedTogether(
    EmbeddingModel& model, absl::Span<const EmbedRequest* const> requests);
std::vector<absl::StatusOr<std::vector<std::string>>> SummarizeTogether(
    SummarizationModel& model, absl::Span<const SummarizeRequest* const> requests);

// A request alone.
absl::StatusOr<Embeddings> EmbedOne(EmbeddingModel& model, const EmbedRequest& request);

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_JOINED_REQUESTS_H_
