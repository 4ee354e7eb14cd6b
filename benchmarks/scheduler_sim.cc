// scheduler_sim: how does the worker pool's scheduler do on a trace of requests for models that
// do not all fit the GPUs, against what Ollama does (first come first served, load on demand,
// evict the least recently used)? It runs the real scheduler on fake GPUs and fake models whose
// loads and requests sleep for their time, compressed `--time-scale` times, and prints one JSON
// object of what happened (in the trace's milliseconds).
//
//   scheduler_sim --devices gpu:24000,gpu:24000 --models models.json --trace trace.jsonl
//                 [--policy modelpool|fifo-lru] [--time-scale 10] [--workers-per-device 1]
//
// models.json: [{"name": "a", "bytes": 3000000000, "load_ms": 800, "us_per_token": 2.0}, ...]
// ("shared_bytes", optional: weights the instances on one device share).
// trace.jsonl: {"t_ms": 12, "model": "a", "priority": "normal", "tokens": 512,
//               "deadline_ms": 5000} per line; the deadline (optional) counts from t_ms.
// benchmarks/scheduler_sim/ has the trace the README reports (tools/make_sim_trace.py makes it).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "examples/common/command_line.h"
#include "examples/common/input_files.h"
#include "modelpool/workers/generic_worker_pool.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_memory_model.h"

ABSL_FLAG(std::string, devices, "", "the fake GPUs and their budgets in MiB: gpu:MiB[,gpu:MiB...]");
ABSL_FLAG(std::string, models, "", "a JSON list of models: name, bytes, load_ms, us_per_token");
ABSL_FLAG(std::string, trace, "", "one request a line: t_ms, model, priority, tokens, deadline_ms");
ABSL_FLAG(std::string, policy, "modelpool", "modelpool or fifo-lru");
ABSL_FLAG(double, time_scale, 10, "simulated time runs this many times faster than real time");
ABSL_FLAG(int64_t, workers_per_device, 1, "worker threads per fake GPU");

namespace modelpool {
namespace {

using testing::FakeGpus;
using testing::FakeMemoryManager;
using testing::FakeMemoryModel;
using testing::FakeSpec;

// A clock `scale` times faster than real time, from zero when it is made.
class ScaledClock : public Clock {
 public:
  explicit ScaledClock(double scale) : scale_(scale), real_start_(absl::Now()) {}
  absl::Time Now() const override { return Sim(absl::Now()); }
  absl::Time RealTimeOf(absl::Time t) const override {
    if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return t;
    return real_start_ + (t - absl::UnixEpoch()) / scale_;
  }
  void Sleep(absl::Duration d) const { absl::SleepFor(d / scale_); }
  static double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

 private:
  absl::Time Sim(absl::Time real) const {
    return absl::UnixEpoch() + (real - real_start_) * scale_;
  }
  const double scale_;
  const absl::Time real_start_;
};

struct Request {
  absl::Duration at;
  std::string model;
  Priority priority = Priority::kNormal;
  int64_t tokens = 1;
  std::optional<absl::Duration> deadline;
};

std::vector<int64_t> ParseDevices(const std::string& text) {
  std::vector<int64_t> totals;
  for (absl::string_view device : absl::StrSplit(text, ',')) {
    std::pair<std::string, std::string> kind_mib = absl::StrSplit(device, ':');
    int64_t mib = 0;
    if (kind_mib.first != "gpu" || !absl::SimpleAtoi(kind_mib.second, &mib) || mib <= 0 ||
        mib > (int64_t{1} << 40)) {
      cli::Fail(absl::StrCat("--devices: '", device, "' is not gpu:MiB"));
    }
    totals.push_back(mib << 20);
  }
  return totals;
}

nlohmann::json ReadJson(const std::string& path, const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) cli::Fail(absl::InvalidArgumentError(path + ": not JSON"));
  return json;
}

// A field of `entry` as `T`, or the fallback when absent; anything else stops the run.
template <typename T>
T Field(const nlohmann::json& entry, const std::string& where, const char* key,
        std::optional<T> fallback = std::nullopt) {
  auto it = entry.find(key);
  if (it == entry.end() && fallback.has_value()) return *fallback;
  if (it == entry.end()) cli::Fail(absl::InvalidArgumentError(where + ": no " + key));
  try {
    return it->get<T>();
  } catch (const std::exception&) {
    cli::Fail(absl::InvalidArgumentError(where + ": " + key + " has the wrong type"));
  }
}

std::vector<FakeSpec> ReadModels(const std::string& path) {
  std::ifstream in(path);
  if (!in) cli::Fail(absl::NotFoundError("cannot read " + path));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json json = ReadJson(path, text);
  if (!json.is_array()) cli::Fail(absl::InvalidArgumentError(path + ": not a list of models"));
  std::vector<FakeSpec> models;
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string where = absl::StrCat(path, "[", i, "]");
    const auto bytes = Field<int64_t>(json[i], where, "bytes");
    const auto shared = Field<int64_t>(json[i], where, "shared_bytes", int64_t{0});
    const auto load_ms = Field<double>(json[i], where, "load_ms");
    const auto us = Field<double>(json[i], where, "us_per_token");
    if (bytes <= 0 || shared < 0 || load_ms < 0 || us < 0) {
      cli::Fail(absl::InvalidArgumentError(where + ": sizes and times cannot be negative"));
    }
    models.push_back({.name = Field<std::string>(json[i], where, "name"),
                      .shared_bytes = shared,
                      .instance_bytes = bytes,
                      .load_time = absl::Milliseconds(load_ms),
                      .per_token = absl::Microseconds(us)});
  }
  return models;
}

std::vector<Request> ReadTrace(const std::string& path) {
  std::vector<Request> trace;
  int line_number = 0;
  absl::StatusOr<std::vector<std::string>> lines = cli::ReadLines(path);
  if (!lines.ok()) cli::Fail(lines.status());
  for (const std::string& line : *lines) {
    const std::string where = absl::StrCat(path, ":", ++line_number);
    const nlohmann::json json = ReadJson(where, line);
    Request r;
    r.at = absl::Milliseconds(Field<double>(json, where, "t_ms"));
    r.model = Field<std::string>(json, where, "model");
    absl::StatusOr<Priority> priority =
        ParsePriority(Field<std::string>(json, where, "priority", std::string("normal")));
    if (!priority.ok())
      cli::Fail(absl::InvalidArgumentError(where + ": " + priority.status().ToString()));
    r.priority = *priority;
    r.tokens = Field<int64_t>(json, where, "tokens", int64_t{1});
    if (json.contains("deadline_ms")) {
      r.deadline = absl::Milliseconds(Field<double>(json, where, "deadline_ms"));
    }
    trace.push_back(std::move(r));
  }
  std::stable_sort(trace.begin(), trace.end(),
                   [](const Request& a, const Request& b) { return a.at < b.at; });
  return trace;
}

// The nearest-rank percentile `q` of `values`, 0 when there are none.
double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

int Run(int argc, char** argv) {
  cli::ParseCommandLine(argc, argv,
                        "scheduler_sim --devices gpu:MiB[,gpu:MiB...] --models FILE --trace FILE "
                        "[--policy modelpool|fifo-lru] [--time-scale N] [--workers-per-device N]");
  const std::vector<int64_t> totals = ParseDevices(cli::Required(FLAGS_devices));
  const std::vector<FakeSpec> models = ReadModels(cli::Required(FLAGS_models));
  const std::vector<Request> trace = ReadTrace(cli::Required(FLAGS_trace));
  const std::string policy = absl::GetFlag(FLAGS_policy);
  const double scale = absl::GetFlag(FLAGS_time_scale);
  if (!(scale >= 0.001)) cli::Fail(absl::StrCat("--time_scale is ", scale, "; at least 0.001"));
  const int workers_per_device = static_cast<int>(cli::InRange(FLAGS_workers_per_device, 1, 1024));

  ScaledClock clock(scale);
  auto gpus = std::make_shared<FakeGpus>(totals);
  Settings settings;
  settings.memory_threshold = 1.0;
  settings.vram_safety_margin_bytes = 0;
  settings.max_instances = static_cast<int>(totals.size()) * workers_per_device;
  absl::StatusOr<std::shared_ptr<MemoryGovernor>> governor =
      MemoryGovernor::Create({.settings = settings, .inventory = gpus->inventory, .clock = &clock});
  if (!governor.ok()) cli::Fail(governor.status());
  WorkerSettings workers;
  workers.workers_per_device = workers_per_device;
  workers.policy = policy;
  workers.job_history = static_cast<int>(trace.size());
  if (absl::Status valid = workers.Validate(); !valid.ok()) cli::Fail(valid);
  absl::StatusOr<std::unique_ptr<GenericWorkerPool>> pool =
      GenericWorkerPool::Create({.settings = settings,
                                 .workers = workers,
                                 .inventory = gpus->inventory,
                                 .governor = *governor,
                                 .clock = &clock,
                                 .max_queued_requests = static_cast<int>(trace.size()) + 1});
  if (!pool.ok()) cli::Fail(pool.status());
  std::vector<std::shared_ptr<FakeMemoryManager>> managers;
  for (const FakeSpec& spec : models) {
    auto manager = FakeMemoryManager::Create(
        spec, gpus, *governor, [&clock](absl::Duration d) { clock.Sleep(d); }, settings);
    if (manager == nullptr) cli::Fail(absl::InvalidArgumentError(spec.name + " fits no device"));
    if (absl::Status s = (*pool)->RegisterModel<FakeMemoryModel>(spec.name, manager); !s.ok()) {
      cli::Fail(s);
    }
    managers.push_back(std::move(manager));
  }

  // Replay: each request is submitted when the clock reaches its time.
  std::vector<JobHandle<int64_t>> jobs;
  jobs.reserve(trace.size());
  for (const Request& r : trace) {
    const absl::Time due = absl::UnixEpoch() + r.at;
    absl::SleepFor(clock.RealTimeOf(due) - absl::Now());
    const int64_t tokens = r.tokens;
    SubmitOptions options{.priority_class = r.priority, .tokens = tokens};
    if (r.deadline.has_value()) options.deadline = due + *r.deadline;
    jobs.push_back((*pool)->SubmitJob<FakeMemoryModel, int64_t>(
        r.model, [tokens](FakeMemoryModel& m) { return m.Run(tokens); }, options));
  }
  // Every request ends, unless something is lost: wait for each, within a bound.
  const absl::Time give_up = absl::Now() + absl::Minutes(30);
  int lost = 0;
  for (auto& job : jobs) {
    if (job.result.wait_until(absl::ToChronoTime(give_up)) != std::future_status::ready) ++lost;
  }

  int completed = 0, failed = 0, expired = 0;
  std::map<Priority, std::vector<double>> latency;
  absl::Time last_end = absl::UnixEpoch();
  for (size_t i = 0; i < jobs.size(); ++i) {
    absl::StatusOr<JobInfo> info = (*pool)->Poll(jobs[i].id);
    if (!info.ok() || !IsFinal(info->state)) continue;
    const absl::Time end = info->at(info->state);
    last_end = std::max(last_end, end);
    if (info->state == JobState::kSucceeded) {
      ++completed;
      latency[trace[i].priority].push_back(
          ScaledClock::Ms(end - (absl::UnixEpoch() + trace[i].at)));
    } else if (info->state == JobState::kExpired) {
      ++expired;
    } else {
      ++failed;
    }
  }
  const WorkerPoolStats stats = (*pool)->Stats();
  uint64_t loads = 0, evictions = 0, switches = 0;
  for (const ModelStats& m : stats.models) {
    loads += m.loads;
    evictions += m.evictions;
  }
  for (const WorkerStats& w : stats.workers) switches += w.switches;
  nlohmann::json out;
  out["policy"] = policy;
  out["requests"] = trace.size();
  out["completed"] = completed;
  out["failed"] = failed;
  out["expired"] = expired;
  out["lost"] = lost;
  out["makespan_ms"] =
      std::llround(ScaledClock::Ms(last_end - (absl::UnixEpoch() + trace.front().at)));
  out["loads"] = loads;
  out["evictions"] = evictions;
  out["switches"] = switches;
  out["peak_bytes"] = nlohmann::json::array();
  out["budget_bytes"] = nlohmann::json::array();
  for (size_t d = 0; d < totals.size(); ++d) {
    out["peak_bytes"].push_back(gpus->peaks[d].load());
    out["budget_bytes"].push_back((*governor)->BudgetBytes(Device::Cuda(static_cast<int>(d))));
  }
  for (Priority p : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow,
                     Priority::kBatch}) {
    const std::vector<double>& values = latency[p];
    out["latency_ms"][std::string(PriorityName(p))] = {
        {"count", values.size()},
        {"p50", std::llround(Percentile(values, 0.50))},
        {"p99", std::llround(Percentile(values, 0.99))}};
  }
  std::printf("%s\n", out.dump().c_str());
  return lost == 0 ? 0 : 1;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) { return modelpool::Run(argc, argv); }
