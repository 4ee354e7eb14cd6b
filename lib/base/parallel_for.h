#ifndef MODELPOOL_LIB_BASE_PARALLEL_FOR_H_
#define MODELPOOL_LIB_BASE_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

namespace modelpool {

// ParallelFor()
//
// Calls `fn(begin, end)` on disjoint ranges that together cover `[0, n)`, each at least
// `min_chunk` long (except a shorter last one), and returns when every call has returned. The
// calls run on a process-wide pool of `std::thread::hardware_concurrency()` worker threads,
// started on first use, and on the calling thread, which takes its share. With `n <= min_chunk`,
// or when called from inside another `ParallelFor`, everything runs on the calling thread.
//
// `fn` must be safe to call concurrently and must not throw. Thread-safe: any number of
// threads may call `ParallelFor` at once; their ranges share the pool.
//
// Example:
//   ParallelFor(texts.size(), 64, [&](int64_t begin, int64_t end) {
//     for (int64_t i = begin; i < end; ++i) ids[i] = Encode(texts[i]);
//   });
void ParallelFor(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_BASE_PARALLEL_FOR_H_
