#ifndef MODELPOOL_EXAMPLES_SERVER_SERVICE_H_
#define MODELPOOL_EXAMPLES_SERVER_SERVICE_H_

// What modelpool-server's routes do, apart from HTTP: each takes the request's body (or path
// parameter) and returns the reply's status and body. The routes' shapes follow OpenAI's
// embeddings API, text-embeddings-inference and Hugging Face's inference API; errors follow
// OpenAI's (see `ErrorBody`).

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "examples/server/requests.h"
#include "modelpool/metrics/pool_metrics.h"
#include "modelpool/workers/worker_pool.h"

namespace modelpool::server {

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Seconds for a `Retry-After` header (429 and 503); 0 for none.
  int retry_after_s = 0;
};

// A reply with `ErrorBody(HttpStatusOf(status), status.message())`.
Reply ErrorReply(const absl::Status& status);

// A model the server serves under `name`: exactly one of the managers is set.
struct ServedModel {
  std::string name;
  std::shared_ptr<EmbeddingModelManager> embedder;
  std::shared_ptr<SummarizationModelManager> summarizer;
};

struct ServiceOptions {
  RequestLimits limits;
  // A request that has not started by then ends with 504 (jobs take their own `deadline_ms`).
  absl::Duration queue_timeout = absl::Minutes(1);
  // Jobs whose results are kept for `GET /jobs/{id}`, and the inputs in them all (which bounds
  // the memory their results take); the oldest ended jobs are forgotten to make room.
  int max_jobs = 1000;
  int64_t max_kept_inputs = 100000;
};

// Service
//
// The models, the worker pool that runs them, its metrics and the jobs submitted through
// `/jobs`. Thread-safe: each HTTP thread calls the routes at once.
class Service {
 public:
  static absl::StatusOr<std::unique_ptr<Service>> Create(std::vector<ServedModel> models,
                                                         WorkerPoolOptions pool_options,
                                                         ServiceOptions options);
  ~Service();

  // Loads one instance of every model; `/ready` answers 200 once all have loaded. Returns the
  // first load's error.
  absl::Status Preload();
  // Whether every model has loaded once (`Preload()`) and the service is not shutting down.
  bool ready() const { return ready_ && !stopping_; }
  // Refuses new requests, runs what is queued for up to `drain`, then cancels the rest.
  void Shutdown(absl::Duration drain);

  Reply OpenAiEmbeddings(absl::string_view body);  // POST /v1/embeddings
  Reply OpenAiModels() const;                      // GET /v1/models
  Reply TeiEmbed(absl::string_view body);          // POST /embed
  Reply TeiInfo() const;                           // GET /info
  Reply HfSummarize(absl::string_view body);       // POST /summarize
  Reply SubmitJob(absl::string_view body);         // POST /jobs
  Reply GetJob(absl::string_view id);              // GET /jobs/{id}
  Reply CancelJob(absl::string_view id);           // DELETE /jobs/{id}
  Reply Stats() const;                             // GET /stats
  Reply Health() const;                            // GET /health
  Reply Ready() const;                             // GET /ready
  Reply Metrics() const;                           // GET /metrics

 private:
  struct Job {
    bool embedding = false;
    int64_t inputs = 0;
    std::shared_future<absl::StatusOr<Embeddings>> embeddings;
    std::shared_future<absl::StatusOr<std::vector<std::string>>> summaries;
  };

  Service(std::vector<ServedModel> models, ServiceOptions options);
  // The model `name` names, or the first of its kind when `name` is null; `NotFound` naming
  // the models served, `InvalidArgument` for a model of the other kind.
  absl::StatusOr<const ServedModel*> Find(const std::string* name, bool embedding) const;
  SubmitOptions Submission(int64_t tokens) const;
  // Keeps `job`, forgetting the oldest ended jobs while the kept jobs or their inputs are too
  // many; `ResourceExhausted` when the pending ones alone are.
  absl::Status Keep(JobId id, Job job);

  const std::vector<ServedModel> models_;
  const ServiceOptions options_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<PoolMetrics> metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  std::map<JobId, Job> jobs_ ABSL_GUARDED_BY(mu_);
  int64_t kept_inputs_ ABSL_GUARDED_BY(mu_) = 0;
  std::string not_ready_ ABSL_GUARDED_BY(mu_) = "the models are loading";
};

}  // namespace modelpool::server

#endif  // MODELPOOL_EXAMPLES_SERVER_SERVICE_H_
