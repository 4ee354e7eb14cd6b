#ifndef MODELPOOL_WORKERS_FAULT_INJECTOR_H_
#define MODELPOOL_WORKERS_FAULT_INJECTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "modelpool/base/device.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/base/settings.h"

namespace modelpool {

// What an injected fault does.
enum class FaultKind {
  kThrow,        // the model call throws an exception
  kStall,        // the model call stalls for `FaultRule::stall` before it runs
  kOutOfMemory,  // the model call fails as a CUDA out-of-memory error does
  kFailLoad,     // loading an instance fails
};

// "throw", "stall", "oom", "load".
const char* FaultKindName(FaultKind kind);

// When one kind of fault is injected: into the calls (or loads) of `model` on `device`, each with
// `probability`, or the `nth` of them only.
struct FaultRule {
  FaultKind kind = FaultKind::kThrow;
  // A model id as registered with the worker pool; empty: every model.
  std::string model;
  // Unset: every device.
  std::optional<Device> device;
  double probability = 0;
  // 1 for the first matching call; 0: none.
  int64_t nth = 0;
  // How long a `kStall` lasts (unless `FaultInjector::ReleaseStalls()` ends it first).
  absl::Duration stall = absl::Seconds(30);
};

// FaultInjector
//
// Makes a worker pool's model calls throw, stall or run out of memory, and its loads fail, as
// its rules say, to see what the pool does under faults. A pool has one only when it is given
// one (`WorkerPoolOptions::faults`) or `MODELPOOL_FAULTS` is set; without one nothing is
// checked. Thread-safe.
//
// `MODELPOOL_FAULTS` holds rules separated by `;`, each a kind (`throw`, `stall`, `oom`,
// `load`) and after a `:` its settings separated by `,`: `p` (probability), `nth`, `model`,
// `device`, `for` (a stall's length); and optionally `seed=N` for the random draws:
//   MODELPOOL_FAULTS="throw:p=0.01;oom:model=mxbai,nth=3;stall:p=0.001,for=10s;load:device=cuda:1,p=0.5"
class FaultInjector {
 public:
  explicit FaultInjector(std::vector<FaultRule> rules, uint64_t seed = 1);
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // FaultInjector::Parse()
  //
  // The injector `spec` describes (as `MODELPOOL_FAULTS` does); `InvalidArgument` naming the
  // rule and what is wrong with it.
  static absl::StatusOr<std::shared_ptr<FaultInjector>> Parse(absl::string_view spec);
  // The injector `MODELPOOL_FAULTS` describes (in the process environment, or as `lookup` says);
  // null when it is unset or empty.
  static absl::StatusOr<std::shared_ptr<FaultInjector>> FromEnv(
      const Settings::EnvLookup& lookup = nullptr);

  // Off, nothing is injected (calls are not counted either); on by default.
  void SetEnabled(bool enabled) { enabled_.store(enabled, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Ends every stall in progress now.
  void ReleaseStalls();

  struct Counts {
    uint64_t calls = 0;  // model calls seen while enabled
    uint64_t loads = 0;  // loads seen while enabled
    uint64_t thrown = 0;
    uint64_t stalled = 0;
    uint64_t out_of_memory = 0;
    uint64_t failed_loads = 0;
    uint64_t injected() const { return thrown + stalled + out_of_memory + failed_loads; }
  };
  Counts counts() const;
  const std::vector<FaultRule>& rules() const { return rules_; }

  // For the worker pool. What to do to a call of `model` on `device`: nothing, or the fault
  // (`kThrow`, `kStall` with its length, `kOutOfMemory`).
  struct Injected {
    FaultKind kind = FaultKind::kThrow;
    absl::Duration stall;
  };
  std::optional<Injected> OnCall(const std::string& model, const Device& device);
  // An error for a load of `model` on `device` to fail with, or OK.
  absl::Status OnLoad(const std::string& model, const Device& device);
  // Waits `duration` (real time), or until `ReleaseStalls()`.
  void Stall(absl::Duration duration);

 private:
  // The first rule for loads (or for calls) that matches the call and fires; counts the call
  // against every rule it matches.
  std::optional<FaultRule> Draw(bool load, const std::string& model, const Device& device);

  const std::vector<FaultRule> rules_;
  std::atomic<bool> enabled_{true};
  mutable Mutex mu_;
  std::vector<int64_t> matched_ ABSL_GUARDED_BY(mu_);  // per rule: calls it matched
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  Counts counts_ ABSL_GUARDED_BY(mu_);
  uint64_t stall_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // moved by ReleaseStalls()
  CondVar released_;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_FAULT_INJECTOR_H_
