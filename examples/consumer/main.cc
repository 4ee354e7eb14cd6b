// Builds against an installed modelpool and leases from a pool of plain objects.
#include <cstdio>
#include <memory>

#include "modelpool/modelpool.h"

int main() {
  struct Greeter {
    const char* Greet() const { return "hello from a pooled instance"; }
  };
  auto pool = modelpool::ModelPool<Greeter>::Create(
      {.max_instances = 2, .factory = []() -> absl::StatusOr<std::unique_ptr<Greeter>> {
         return std::make_unique<Greeter>();
       }});
  if (!pool.ok()) return 1;
  absl::StatusOr<modelpool::Lease<Greeter>> lease = (*pool)->Acquire(absl::Seconds(1));
  if (!lease.ok()) return 1;
  std::printf("%s (%s)\n", (*lease)->Greet(), (*pool)->Stats().ToString().c_str());
  return 0;
}
