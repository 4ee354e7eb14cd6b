#ifndef MODELPOOL_LIB_WORKERS_WORKER_POOL_MERGING_H_
#define MODELPOOL_LIB_WORKERS_WORKER_POOL_MERGING_H_

#include <memory>
#include <string>
#include <vector>

#include "lib/workers/merged_requests.h"
#include "modelpool/workers/worker_pool.h"

namespace modelpool {
namespace workers_internal {

// What makes two requests identical: the model, the request (texts and options) and how it is
// scheduled. The request is shared with the job that runs it, so keeping it costs no copy.
template <typename Request>
struct RequestKey {
  std::string model;
  std::shared_ptr<const Request> request;
  SubmitOptions options;
};

struct RequestKeyHash {
  size_t operator()(const RequestKey<EmbedRequest>& key) const;
  size_t operator()(const RequestKey<SummarizeRequest>& key) const;
};
struct RequestKeyEq {
  bool operator()(const RequestKey<EmbedRequest>& a, const RequestKey<EmbedRequest>& b) const;
  bool operator()(const RequestKey<SummarizeRequest>& a,
                  const RequestKey<SummarizeRequest>& b) const;
};

// Whether a request may join an identical one in flight: it did not opt out, and nothing in it
// is a callback (which cannot be compared).
bool Mergeable(const EmbedRequest& request, const SubmitOptions& options);
bool Mergeable(const SummarizeRequest& request, const SubmitOptions& options);

}  // namespace workers_internal

// The requests of a `WorkerPool` in flight, by content.
struct WorkerPool::Merging {
  Merging();

  workers_internal::MergedRequests<workers_internal::RequestKey<EmbedRequest>, Embeddings,
                                   workers_internal::RequestKeyHash, workers_internal::RequestKeyEq>
      embed;
  workers_internal::MergedRequests<workers_internal::RequestKey<SummarizeRequest>,
                                   std::vector<std::string>, workers_internal::RequestKeyHash,
                                   workers_internal::RequestKeyEq>
      summarize;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_WORKERS_WORKER_POOL_MERGING_H_
