#include "lib/base/parallel_for.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>
#include <vector>

namespace modelpool {
namespace {

TEST_CASE("ParallelFor covers every index exactly once") {
  for (const int64_t n : {0, 1, 7, 64, 1000, 100003}) {
    for (const int64_t min_chunk : {1, 3, 64, 5000}) {
      std::vector<std::atomic<int>> hits(n);
      ParallelFor(n, min_chunk, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
      });
      int64_t wrong = 0;
      for (const auto& h : hits) wrong += h.load() != 1;
      INFO("n=" << n << " min_chunk=" << min_chunk);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("ParallelFor keeps chunks at least min_chunk long") {
  std::atomic<int64_t> shortest{INT64_MAX};
  std::atomic<int64_t> short_chunks{0};
  ParallelFor(10000, 100, [&](int64_t begin, int64_t end) {
    if (end - begin < 100 && end != 10000) short_chunks.fetch_add(1);
    int64_t seen = shortest.load();
    while (end - begin < seen && !shortest.compare_exchange_weak(seen, end - begin)) {
    }
  });
  CHECK(short_chunks.load() == 0);
  CHECK(shortest.load() >= 1);
}

TEST_CASE("ParallelFor runs small ranges on the calling thread") {
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  ParallelFor(10, 10, [&](int64_t, int64_t) { ran_on = std::this_thread::get_id(); });
  CHECK(ran_on == caller);
}

TEST_CASE("ParallelFor inside ParallelFor runs inline and completes") {
  std::atomic<int64_t> total{0};
  ParallelFor(64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      ParallelFor(100, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
    }
  });
  CHECK(total.load() == 64 * 100);
}

TEST_CASE("ParallelFor is safe from many threads at once") {
  constexpr int kThreads = 8;
  std::vector<int64_t> sums(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &sums] {
      for (int round = 0; round < 20; ++round) {
        std::atomic<int64_t> sum{0};
        ParallelFor(5000, 10, [&](int64_t begin, int64_t end) {
          int64_t local = 0;
          for (int64_t i = begin; i < end; ++i) local += i;
          sum.fetch_add(local);
        });
        sums[t] += sum.load();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) CHECK(sums[t] == 20 * (5000LL * 4999 / 2));
}

}  // namespace
}  // namespace modelpool
