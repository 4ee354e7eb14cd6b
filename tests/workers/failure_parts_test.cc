// The parts the worker pool survives faults with, each on its own: restart backoff, circuit
// breaker, fault injector, out-of-memory split, merged requests, failure settings.
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lib/workers/circuit_breaker.h"
#include "lib/workers/merged_requests.h"
#include "lib/workers/oom_split.h"
#include "lib/workers/restart_backoff.h"
#include "modelpool/workers/failure_settings.h"
#include "modelpool/workers/fault_injector.h"
#include "modelpool/workers/internal/model_call.h"
#include "tests/testing/eventually.h"

namespace modelpool::workers_internal {
namespace {

using ::modelpool::testing::Eventually;

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

Settings::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST_CASE("Restart delays double from the base up to the cap; jitter only shortens them") {
  FailureSettings s;
  s.restart_backoff_base = absl::Seconds(1);
  s.restart_backoff_cap = absl::Seconds(8);
  s.restart_jitter = 0.5;
  CHECK(BackoffDelay(s, 1, 0.0) == absl::Seconds(1));
  CHECK(BackoffDelay(s, 2, 0.0) == absl::Seconds(2));
  CHECK(BackoffDelay(s, 3, 0.0) == absl::Seconds(4));
  CHECK(BackoffDelay(s, 4, 0.0) == absl::Seconds(8));
  CHECK(BackoffDelay(s, 40, 0.0) == absl::Seconds(8));
  CHECK(BackoffDelay(s, 4, 1.0) == absl::Seconds(4));
  CHECK(BackoffDelay(s, 4, 0.5) == absl::Seconds(6));
}

TEST_CASE("A restart backoff gives up after the last attempt; a success starts it over") {
  FailureSettings s;
  s.restart_backoff_base = absl::Seconds(1);
  s.restart_backoff_cap = absl::Seconds(10);
  s.restart_jitter = 0;
  s.restart_max_attempts = 3;
  RestartBackoff backoff;
  CHECK_FALSE(backoff.restarting());
  CHECK_FALSE(backoff.Fail(s, kStart, absl::InternalError("one"), 0.3));
  CHECK(backoff.next_try() == kStart + absl::Seconds(1));
  CHECK(backoff.pending(kStart + absl::Milliseconds(999)));
  CHECK_FALSE(backoff.pending(kStart + absl::Seconds(1)));
  CHECK_FALSE(backoff.Fail(s, kStart + absl::Seconds(1), absl::InternalError("two"), 0.3));
  CHECK(backoff.next_try() == kStart + absl::Seconds(3));
  backoff.Succeed();
  CHECK(backoff.failures() == 0);
  CHECK_FALSE(backoff.Fail(s, kStart, absl::InternalError("a"), 0));
  CHECK_FALSE(backoff.Fail(s, kStart, absl::InternalError("b"), 0));
  CHECK(backoff.Fail(s, kStart, absl::InternalError("c"), 0));
  CHECK(backoff.cause().message() == "c");
}

TEST_CASE("Only the model's own errors count against it") {
  CHECK(CountsAgainstModel(absl::InternalError("threw")));
  CHECK(CountsAgainstModel(absl::UnknownError("?")));
  CHECK_FALSE(CountsAgainstModel(absl::OkStatus()));
  CHECK_FALSE(CountsAgainstModel(absl::InvalidArgumentError("bad input")));
  CHECK_FALSE(CountsAgainstModel(absl::CancelledError("cancelled")));
  CHECK_FALSE(CountsAgainstModel(absl::ResourceExhaustedError("CUDA out of memory")));
}

TEST_CASE("A circuit opens after failures in a row, half-opens after its cool-down, closes") {
  FailureSettings s;
  s.breaker_failures = 3;
  s.breaker_error_rate = 0;
  s.breaker_cooldown = absl::Seconds(30);
  s.breaker_probes = 2;
  CircuitBreaker b;
  absl::Time t = kStart;
  CHECK_FALSE(b.Record(s, t, false, true, "a"));
  CHECK_FALSE(b.Record(s, t, false, true, "b"));
  CHECK_FALSE(b.Record(s, t, false, false, ""));  // a success ends the run
  CHECK_FALSE(b.Record(s, t, false, true, "c"));
  CHECK_FALSE(b.Record(s, t, false, true, "d"));
  std::optional<CircuitBreaker::Change> opened = b.Record(s, t, false, true, "e");
  REQUIRE(opened);
  CHECK(opened->from == CircuitState::kClosed);
  CHECK(opened->to == CircuitState::kOpen);
  CHECK_THAT(opened->reason, Catch::Contains("3 failures in a row") && Catch::Contains("e"));
  CHECK(b.openings() == 1);
  CHECK_FALSE(b.Allows());
  CHECK(b.reopens_at() == t + absl::Seconds(30));
  CHECK_FALSE(b.Tick(t + absl::Seconds(29)));
  // A request that started before it opened does not count.
  CHECK_FALSE(b.Record(s, t, false, true, "late"));
  std::optional<CircuitBreaker::Change> half = b.Tick(t + absl::Seconds(30));
  REQUIRE(half);
  CHECK(half->to == CircuitState::kHalfOpen);
  t += absl::Seconds(30);
  REQUIRE(b.Allows());
  CHECK(b.Start());
  REQUIRE(b.Allows());
  CHECK(b.Start());
  CHECK_FALSE(b.Allows());  // two probes at most
  CHECK_FALSE(b.Record(s, t, true, false, ""));
  std::optional<CircuitBreaker::Change> closed = b.Record(s, t, true, false, "");
  REQUIRE(closed);
  CHECK(closed->from == CircuitState::kHalfOpen);
  CHECK(closed->to == CircuitState::kClosed);
  CHECK(b.Allows());
  CHECK_FALSE(b.Start());  // no probe once closed
}

TEST_CASE("A failed probe opens the circuit again") {
  FailureSettings s;
  s.breaker_failures = 1;
  s.breaker_cooldown = absl::Seconds(5);
  CircuitBreaker b;
  REQUIRE(b.Record(s, kStart, false, true, "x"));
  REQUIRE(b.Tick(kStart + absl::Seconds(5)));
  REQUIRE(b.Start());
  std::optional<CircuitBreaker::Change> again =
      b.Record(s, kStart + absl::Seconds(6), true, true, "still broken");
  REQUIRE(again);
  CHECK(again->to == CircuitState::kOpen);
  CHECK_THAT(again->reason, Catch::Contains("still broken"));
  CHECK(b.openings() == 2);
  CHECK(b.reopens_at() == kStart + absl::Seconds(11));
}

TEST_CASE("A circuit opens on its error rate within the window") {
  FailureSettings s;
  s.breaker_failures = 0;
  s.breaker_error_rate = 0.5;
  s.breaker_min_requests = 4;
  s.breaker_window = absl::Seconds(10);
  CircuitBreaker b;
  // Old failures leave the window.
  CHECK_FALSE(b.Record(s, kStart, false, true, "old"));
  CHECK_FALSE(b.Record(s, kStart, false, true, "old"));
  const absl::Time t = kStart + absl::Seconds(11);
  CHECK_FALSE(b.Record(s, t, false, false, ""));
  CHECK_FALSE(b.Record(s, t, false, true, "1"));
  CHECK_FALSE(b.Record(s, t, false, false, ""));
  std::optional<CircuitBreaker::Change> opened = b.Record(s, t, false, true, "2");
  REQUIRE(opened);
  CHECK_THAT(opened->reason, Catch::Contains("2 of the last 4"));
}

TEST_CASE("Fault rules parse from text, and a bad one is named") {
  absl::StatusOr<std::shared_ptr<FaultInjector>> parsed = FaultInjector::Parse(
      "throw:p=0.01; oom:model=mxbai,nth=3; stall:p=0.5,for=10s; load:device=cuda:1,p=1; seed=7");
  REQUIRE(parsed.ok());
  const std::vector<FaultRule>& rules = (*parsed)->rules();
  REQUIRE(rules.size() == 4);
  CHECK(rules[0].kind == FaultKind::kThrow);
  CHECK(rules[0].probability == 0.01);
  CHECK(rules[1].kind == FaultKind::kOutOfMemory);
  CHECK(rules[1].model == "mxbai");
  CHECK(rules[1].nth == 3);
  CHECK(rules[2].kind == FaultKind::kStall);
  CHECK(rules[2].stall == absl::Seconds(10));
  CHECK(rules[3].kind == FaultKind::kFailLoad);
  CHECK(rules[3].device == Device::Cuda(1));
  for (const char* bad : {"explode:p=1", "throw", "throw:p=2", "throw:nth=0", "throw:p=1,for=1s",
                          "stall:p=1,for=-1s", "load:device=tpu:0,p=1", "throw:colour=red"}) {
    absl::StatusOr<std::shared_ptr<FaultInjector>> r = FaultInjector::Parse(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK_THAT(std::string(FaultInjector::Parse("throw:colour=red").status().message()),
             Catch::Contains("throw:colour=red") && Catch::Contains("colour"));
}

TEST_CASE("MODELPOOL_FAULTS makes an injector; unset, there is none") {
  absl::StatusOr<std::shared_ptr<FaultInjector>> none = FaultInjector::FromEnv(Env({}));
  REQUIRE(none.ok());
  CHECK(*none == nullptr);
  absl::StatusOr<std::shared_ptr<FaultInjector>> some =
      FaultInjector::FromEnv(Env({{"MODELPOOL_FAULTS", "throw:nth=1"}}));
  REQUIRE(some.ok());
  REQUIRE(*some != nullptr);
  CHECK((*some)->rules().size() == 1);
  absl::StatusOr<std::shared_ptr<FaultInjector>> bad =
      FaultInjector::FromEnv(Env({{"MODELPOOL_FAULTS", "throw:p=x"}}));
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("MODELPOOL_FAULTS"));
}

TEST_CASE("The injector fires on the nth matching call, per model and device, and counts") {
  FaultInjector faults({{.kind = FaultKind::kThrow, .model = "a", .nth = 3},
                        {.kind = FaultKind::kOutOfMemory, .device = Device::Cuda(1), .nth = 1},
                        {.kind = FaultKind::kFailLoad, .model = "b", .probability = 1}});
  const Device gpu0 = Device::Cuda(0), gpu1 = Device::Cuda(1);
  CHECK_FALSE(faults.OnCall("a", gpu0));
  CHECK_FALSE(faults.OnCall("b", gpu0));
  CHECK_FALSE(faults.OnCall("a", gpu0));
  std::optional<FaultInjector::Injected> third = faults.OnCall("a", gpu0);
  REQUIRE(third);
  CHECK(third->kind == FaultKind::kThrow);
  CHECK_FALSE(faults.OnCall("a", gpu0));
  std::optional<FaultInjector::Injected> oom = faults.OnCall("b", gpu1);
  REQUIRE(oom);
  CHECK(oom->kind == FaultKind::kOutOfMemory);
  CHECK(faults.OnLoad("a", gpu0).ok());
  CHECK(faults.OnLoad("b", gpu0).code() == absl::StatusCode::kUnavailable);
  faults.SetEnabled(false);
  CHECK(faults.OnLoad("b", gpu0).ok());
  const FaultInjector::Counts counts = faults.counts();
  CHECK(counts.calls == 6);
  CHECK(counts.loads == 2);
  CHECK(counts.thrown == 1);
  CHECK(counts.out_of_memory == 1);
  CHECK(counts.failed_loads == 1);
  CHECK(counts.stalled == 0);
  CHECK(counts.injected() == 3);
}

TEST_CASE("ReleaseStalls ends a stall in progress") {
  FaultInjector faults({{.kind = FaultKind::kStall, .probability = 1}});
  std::atomic<bool> done{false};
  std::thread stalled([&] {
    faults.Stall(absl::Hours(1));
    done = true;
  });
  const bool ended = Eventually([&] {
    faults.ReleaseStalls();
    return done.load();
  });
  stalled.join();
  CHECK(ended);
}

TEST_CASE("A model call turns injected faults into what the real ones would give") {
  auto faults = std::make_shared<FaultInjector>(std::vector<FaultRule>{
      {.kind = FaultKind::kThrow, .nth = 1}, {.kind = FaultKind::kOutOfMemory, .nth = 2}});
  auto counters = std::make_shared<CallCounters>();
  ModelCall call("m", Device::Cpu(), faults, nullptr, counters, /*split_on_oom=*/false);
  int runs = 0;
  auto run = [&]() -> absl::StatusOr<int> { return ++runs; };
  absl::StatusOr<int> thrown = call.Run("a test call", run);
  CHECK(thrown.status().code() == absl::StatusCode::kInternal);
  CHECK_THAT(std::string(thrown.status().message()), Catch::Contains("injected fault"));
  absl::StatusOr<int> oom = call.Run("a test call", run);
  CHECK(IsOutOfMemory(oom));
  absl::StatusOr<int> ok = call.Run("a test call", run);
  REQUIRE(ok.ok());
  CHECK(*ok == 1);  // the faults came instead of the calls
  CHECK(counters->out_of_memory == 1);
  CHECK_FALSE(IsOutOfMemory(absl::ResourceExhaustedError("the queue is full")));
  // libtorch's own out-of-memory error is an exception: it counts too, and not against the model.
  absl::StatusOr<int> real = call.Run("a test call", []() -> absl::StatusOr<int> {
    throw std::runtime_error("CUDA out of memory. Tried to allocate 2.00 GiB");
  });
  CHECK(IsOutOfMemory(real));
  CHECK_FALSE(CountsAgainstModel(real.status()));
  CHECK(counters->out_of_memory == 2);
  CHECK_FALSE(IsOutOfMemory(absl::InternalError("index out of range")));
}

// A batch of `rows` rows whose row `bad` never fits, and which fits only `fits` rows at a time.
struct Batch {
  int64_t bad = -1;
  int64_t fits = 1 << 20;
  int calls = 0;
  absl::StatusOr<std::vector<int64_t>> operator()(int64_t begin, int64_t end) {
    ++calls;
    if (end - begin > fits || (begin <= bad && bad < end)) {
      return absl::ResourceExhaustedError("CUDA out of memory. Tried to allocate 2.00 GiB");
    }
    std::vector<int64_t> out;
    for (int64_t i = begin; i < end; ++i) out.push_back(i * 10);
    return out;
  }
};

TEST_CASE("A batch that runs out of memory is split down to the one row that fails alone") {
  Batch batch{.bad = 5, .fits = 4};
  int released = 0;
  CallCounters counters;
  std::vector<Piece<std::vector<int64_t>>> pieces = RunSplitting<std::vector<int64_t>>(
      16, [&](int64_t b, int64_t e) { return batch(b, e); },
      OomRetry{true, [&] { ++released; }, &counters});
  int64_t next = 0;
  int failed = 0;
  for (const Piece<std::vector<int64_t>>& piece : pieces) {
    CHECK(piece.begin == next);  // in row order, every row once
    next = piece.end;
    if (piece.result.ok()) {
      REQUIRE(piece.result->size() == static_cast<size_t>(piece.end - piece.begin));
      for (int64_t i = piece.begin; i < piece.end; ++i) {
        CHECK((*piece.result)[static_cast<size_t>(i - piece.begin)] == i * 10);
      }
    } else {
      ++failed;
      CHECK(piece.begin == 5);
      CHECK(piece.end == 6);
      CHECK(piece.result.status().code() == absl::StatusCode::kResourceExhausted);
    }
  }
  CHECK(next == 16);
  CHECK(failed == 1);
  CHECK(released > 0);
  CHECK(counters.split_retries == static_cast<uint64_t>(released));
  CHECK(batch.calls < 4 * 16);
}

TEST_CASE("Other errors, or splitting off, end the batch unsplit") {
  int calls = 0;
  std::vector<Piece<int>> failed = RunSplitting<int>(
      8,
      [&](int64_t, int64_t) -> absl::StatusOr<int> {
        ++calls;
        return absl::InternalError("broken");
      },
      OomRetry{});
  REQUIRE(failed.size() == 1);
  CHECK(calls == 1);
  CHECK(failed[0].result.status().code() == absl::StatusCode::kInternal);
  Batch batch{.bad = 2};
  std::vector<Piece<std::vector<int64_t>>> unsplit = RunSplitting<std::vector<int64_t>>(
      8, [&](int64_t b, int64_t e) { return batch(b, e); }, OomRetry{.split = false});
  REQUIRE(unsplit.size() == 1);
  CHECK(IsOutOfMemory(unsplit[0].result));
}

TEST_CASE("A whole request that runs out of memory is retried once after freeing the cache") {
  auto faults = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .nth = 1}});
  auto counters = std::make_shared<CallCounters>();
  ModelCall call("m", Device::Cpu(), faults, nullptr, counters, /*split_on_oom=*/true);
  absl::StatusOr<int> retried = call.RunWhole("a request", [] { return absl::StatusOr<int>(1); });
  REQUIRE(retried.ok());
  CHECK(*retried == 1);
  CHECK(counters->out_of_memory == 1);
  CHECK(counters->split_retries == 1);
  // Without splitting the error comes back as it is.
  auto again = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .nth = 1}});
  ModelCall unsplit("m", Device::Cpu(), again, nullptr, counters, /*split_on_oom=*/false);
  CHECK(IsOutOfMemory(unsplit.RunWhole("a request", [] { return absl::StatusOr<int>(1); })));
  CHECK(counters->split_retries == 1);
}

struct StringHash {
  size_t operator()(const std::string& s) const { return std::hash<std::string>()(s); }
};
using Merged = MergedRequests<std::string, std::string, StringHash, std::equal_to<>>;

TEST_CASE("Identical requests in flight merge: one runs, every caller gets its result") {
  std::atomic<int> copies{0};
  Merged merged([&](const std::string& s) {
    ++copies;
    return s;
  });
  std::shared_ptr<Merged::Flight> lead;
  REQUIRE_FALSE(merged.Join("hello", &lead));
  REQUIRE(lead != nullptr);
  Merged::SetId(lead, 42);
  std::shared_ptr<Merged::Flight> other;
  std::optional<JobHandle<std::string>> a = merged.Join("hello", &other);
  std::optional<JobHandle<std::string>> b = merged.Join("hello", &other);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->id == 42);
  CHECK(b->id == 42);
  std::shared_ptr<Merged::Flight> different;
  REQUIRE_FALSE(merged.Join("bye", &different));  // another request leads its own
  CHECK(merged.in_flight() == 2);
  merged.Finish(lead, std::string("HELLO"));
  CHECK(*a->result.get() == "HELLO");
  CHECK(*b->result.get() == "HELLO");
  CHECK(copies == 2);
  // Once it has ended, the next identical request runs again.
  std::shared_ptr<Merged::Flight> again;
  CHECK_FALSE(merged.Join("hello", &again));
  Merged::SetId(again, 43);
  std::shared_ptr<Merged::Flight> follower;
  std::optional<JobHandle<std::string>> c = merged.Join("hello", &follower);
  REQUIRE(c);
  merged.Finish(again, absl::InternalError("it failed"));
  CHECK(c->result.get().status().code() == absl::StatusCode::kInternal);
  Merged::SetId(different, 44);
  merged.Finish(different, std::string("BYE"));
  CHECK(merged.in_flight() == 0);
}

TEST_CASE("Failure settings come from the environment; bad values are named") {
  absl::StatusOr<FailureSettings> s =
      FailureSettings::FromEnv(FailureSettings(), Env({{"MODELPOOL_RESTART_BACKOFF_BASE", "250ms"},
                                                       {"MODELPOOL_RESTART_MAX_ATTEMPTS", "7"},
                                                       {"MODELPOOL_EXECUTION_TIMEOUT", "0"},
                                                       {"MODELPOOL_BREAKER_FAILURES", "2"},
                                                       {"MODELPOOL_OOM_SPLIT", "false"}}));
  REQUIRE(s.ok());
  CHECK(s->restart_backoff_base == absl::Milliseconds(250));
  CHECK(s->restart_max_attempts == 7);
  CHECK(s->execution_timeout == absl::InfiniteDuration());
  CHECK(s->breaker_failures == 2);
  CHECK_FALSE(s->oom_split);
  absl::StatusOr<FailureSettings> bad =
      FailureSettings::FromEnv(FailureSettings(), Env({{"MODELPOOL_BREAKER_COOLDOWN", "soon"}}));
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("MODELPOOL_BREAKER_COOLDOWN"));
  FailureSettings inverted;
  inverted.restart_backoff_cap = absl::Milliseconds(1);
  CHECK(inverted.Validate().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelpool::workers_internal
