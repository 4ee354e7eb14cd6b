#include "lib/base/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "modelpool/base/internal/mutex.h"

namespace modelpool {
namespace {

// True on the pool's workers and on a thread inside `ParallelFor`, so that a nested call runs
// inline instead of waiting for workers that may all be waiting on it.
thread_local bool in_parallel_for = false;

// One `ParallelFor` call: chunks are claimed with an atomic counter, so the caller and any
// number of workers can share it without holding the pool lock.
struct Job {
  Job(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>* fn)
      : n(n), chunk(chunk), num_chunks((n + chunk - 1) / chunk), fn(fn) {}

  // Runs chunks until none is left; returns whether this thread finished the last one.
  bool RunChunks() {
    bool finished_last = false;
    for (int64_t c = next.fetch_add(1); c < num_chunks; c = next.fetch_add(1)) {
      const int64_t begin = c * chunk;
      (*fn)(begin, std::min(n, begin + chunk));
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == num_chunks) finished_last = true;
    }
    return finished_last;
  }
  bool HasChunks() const { return next.load() < num_chunks; }

  const int64_t n;
  const int64_t chunk;
  const int64_t num_chunks;
  const std::function<void(int64_t, int64_t)>* const fn;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
};

class Pool {
 public:
  explicit Pool(int num_workers) {
    workers_.reserve(num_workers);
    for (int i = 0; i < num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }

  ~Pool() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& worker : workers_) worker.join();
  }

  void Run(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    auto job = std::make_shared<Job>(n, chunk, &fn);
    {
      MutexLock lock(&mu_);
      jobs_.push_back(job);
    }
    in_parallel_for = true;
    job->RunChunks();
    in_parallel_for = false;
    MutexLock lock(&mu_);
    // Done already when this thread ran the last chunk; otherwise the worker that runs it
    // takes and releases `mu_`, which re-evaluates this predicate.
    mu_.Await([&] { return job->done.load(std::memory_order_acquire) == job->num_chunks; });
    RemoveLocked(job.get());
  }

 private:
  void WorkerLoop() {
    in_parallel_for = true;
    while (true) {
      std::shared_ptr<Job> job;
      {
        MutexLock lock(&mu_);
        mu_.Await([this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = jobs_.front();
        // Taken off the queue as soon as nothing is left to claim, so idle workers sleep.
        if (!job->HasChunks()) {
          RemoveLocked(job.get());
          continue;
        }
      }
      if (job->RunChunks()) {
        // Wakes the caller: `Await` re-evaluates its predicate when the lock is released.
        MutexLock lock(&mu_);
      }
    }
  }

  void RemoveLocked(const Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = std::find_if(jobs_.begin(), jobs_.end(),
                           [job](const std::shared_ptr<Job>& j) { return j.get() == job; });
    if (it != jobs_.end()) jobs_.erase(it);
  }

  Mutex mu_;
  std::deque<std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

Pool& ProcessPool() {
  // Never destroyed: `ParallelFor` may run during static destruction, and blocked workers
  // end with the process.
  static Pool* pool = new Pool(std::max(1u, std::thread::hardware_concurrency()));
  return *pool;
}

}  // namespace

void ParallelFor(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (n <= min_chunk || in_parallel_for) {
    fn(0, n);
    return;
  }
  // About four chunks per thread keeps threads busy when chunks take unequal time.
  const int64_t threads = std::max(1u, std::thread::hardware_concurrency()) + 1;
  const int64_t chunk = std::max(min_chunk, (n + 4 * threads - 1) / (4 * threads));
  ProcessPool().Run(n, chunk, fn);
}

}  // namespace modelpool
