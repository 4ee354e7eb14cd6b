// Pools objects of the application's own, with no libtorch: a ModelPool of two instances,
// leased from four threads, and the version the headers carry.
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "modelpool/pool/model_pool.h"
#include "modelpool/version.h"

int main() {
  struct Connection {
    int Query(int x) const { return x * 2; }
  };
  auto pool = modelpool::ModelPool<Connection>::Create(
      {.max_instances = 2, .factory = []() -> absl::StatusOr<std::unique_ptr<Connection>> {
         return std::make_unique<Connection>();
       }});
  if (!pool.ok()) return 1;
  std::atomic<int> sum{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        absl::StatusOr<modelpool::Lease<Connection>> lease = (*pool)->Acquire(absl::Seconds(5));
        if (!lease.ok()) {
          ++failures;
          return;
        }
        sum += (*lease)->Query(t);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::printf("modelpool %s: sum %d, %s\n", MODELPOOL_VERSION_STRING, sum.load(),
              (*pool)->Stats().ToString().c_str());
  return failures == 0 && sum == 2 * 100 * (0 + 1 + 2 + 3) ? 0 : 1;
}
