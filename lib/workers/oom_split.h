#ifndef MODELPOOL_LIB_WORKERS_OOM_SPLIT_H_
#define MODELPOOL_LIB_WORKERS_OOM_SPLIT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "modelpool/workers/internal/model_call.h"

namespace modelpool::workers_internal {

// Note [Out of memory in a batch]
// A batch that runs out of device memory may fit in smaller parts, and some of what failed is
// memory the framework still caches from earlier batches. So after an out-of-memory error the
// device's cached memory is freed and the batch is split in two; each half is tried and split
// again while it does not fit, down to single rows. A row that does not fit alone is tried once
// more (after freeing the cache again) and then fails with `ResourceExhausted`, alone: the
// other rows succeed. Each failure halves the rows per call, so a batch of n rows takes fewer
// than 4n calls. Other errors end the part that met them, unsplit.

// The result of rows [begin, end) of a batch.
template <typename Out>
struct Piece {
  int64_t begin = 0;
  int64_t end = 0;
  absl::StatusOr<Out> result;
};

// How out-of-memory errors are met: whether to split at all, how to free the cached memory, and
// where to count the retries (may be null).
struct OomRetry {
  bool split = true;
  std::function<void()> release_cache;
  CallCounters* counters = nullptr;
};

// Calls `call(begin, end)` on rows [0, rows), splitting as Note [Out of memory in a batch]
// says; returns the pieces in row order, which together cover every row once.
template <typename Out>
std::vector<Piece<Out>> RunSplitting(
    int64_t rows, const std::function<absl::StatusOr<Out>(int64_t, int64_t)>& call,
    const OomRetry& retry) {
  std::vector<Piece<Out>> pieces;
  // Ranges still to run, the first on top; `retried`: a single row already tried once.
  struct Range {
    int64_t begin, end;
    bool retried;
  };
  std::vector<Range> todo;
  if (rows > 0) todo.push_back({0, rows, false});
  while (!todo.empty()) {
    const Range r = todo.back();
    todo.pop_back();
    absl::StatusOr<Out> result = call(r.begin, r.end);
    const bool single = r.end - r.begin == 1;
    if (!retry.split || !IsOutOfMemory(result) || (single && r.retried)) {
      pieces.push_back({r.begin, r.end, std::move(result)});
      continue;
    }
    if (retry.release_cache) retry.release_cache();
    if (retry.counters != nullptr) {
      retry.counters->split_retries.fetch_add(1, std::memory_order_relaxed);
    }
    if (single) {
      todo.push_back({r.begin, r.end, true});
    } else {
      const int64_t mid = r.begin + (r.end - r.begin) / 2;
      todo.push_back({mid, r.end, false});
      todo.push_back({r.begin, mid, false});
    }
  }
  return pieces;
}

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_LIB_WORKERS_OOM_SPLIT_H_
