// scheduler_gpu_bench: does the worker pool serve more models than fit its GPU, loading and
// evicting them as the work asks, with the priority classes holding? Two embedding models and
// one summarization model on one GPU whose budget is capped so that only two of them fit at once;
// a mixed stream of requests from several threads; loads, evictions, switches, throughput and
// p50/p99 latency per class.
//
//   scheduler_gpu_bench --embed bert-large=DIR,minilm=DIR --summarize t5-large=DIR
//                       --corpus corpus.txt [--budget-mb auto|N] [--threads 8] [--seconds 60]
//                       [--device cuda:0]
//
// (tools/gpu_steps.sh bench_scheduler runs it on random-weight bert-large, minilm-l6, t5-large.)
//
// With --budget-mb auto (the default) each model is loaded alone first and measured; the budget
// is then the two largest footprints plus half the smallest. --device cpu runs the same on the
// CPU (the budget is then host memory), for a smoke test with small models.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "examples/common/command_line.h"
#include "examples/common/input_files.h"
#include "modelpool/workers/worker_pool.h"

ABSL_FLAG(std::string, embed, "", "embedding models: NAME=DIR[,NAME=DIR]");
ABSL_FLAG(std::string, summarize, "", "summarization models: NAME=DIR[,NAME=DIR]");
ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, budget_mb, "auto",
          "the GPU's budget in MiB; auto: room for the two largest models, not three");
ABSL_FLAG(int64_t, threads, 8, "submitting threads");
ABSL_FLAG(int64_t, seconds, 60, "how long the mixed stream runs");
ABSL_FLAG(std::string, device, "cuda:0", "the device");

namespace modelpool {
namespace {

struct Entry {
  std::string name, dir;
  bool summarize = false;
};

struct Args {
  std::vector<Entry> models;
  std::vector<std::string> corpus;
  std::string budget;
  int threads = 8;
  int seconds = 60;
  Device device = Device::Cuda(0);
};

Args Parse(int argc, char** argv) {
  cli::ParseCommandLine(argc, argv,
                        "scheduler_gpu_bench --embed NAME=DIR[,NAME=DIR] --summarize "
                        "NAME=DIR[,NAME=DIR] --corpus FILE [--budget-mb auto|N] [--threads N] "
                        "[--seconds N] [--device cuda:0|cpu]");
  Args args;
  for (const auto& [flag, name, summarize] :
       {std::tuple{&FLAGS_embed, "--embed", false}, {&FLAGS_summarize, "--summarize", true}}) {
    const std::string list = absl::GetFlag(*flag);
    if (list.empty()) continue;
    for (absl::string_view item : absl::StrSplit(list, ',')) {
      std::pair<std::string, std::string> name_dir = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (name_dir.first.empty() || name_dir.second.empty()) {
        cli::Fail(std::string(name) + " takes NAME=DIR");
      }
      args.models.push_back({name_dir.first, name_dir.second, summarize});
    }
  }
  if (args.models.size() < 2) cli::Fail("give at least two models");
  absl::StatusOr<std::vector<std::string>> corpus = cli::ReadLines(cli::Required(FLAGS_corpus));
  if (!corpus.ok()) cli::Fail(corpus.status());
  args.corpus = *std::move(corpus);
  args.budget = absl::GetFlag(FLAGS_budget_mb);
  args.threads = static_cast<int>(cli::InRange(FLAGS_threads, 1, 1024));
  args.seconds = static_cast<int>(cli::InRange(FLAGS_seconds, 1, 24 * 3600));
  args.device = cli::DeviceOf(FLAGS_device);
  if (args.corpus.empty()) cli::Fail("the corpus is empty");
  return args;
}

Settings OnDevice(const Args& args, int64_t budget) {
  Settings s;
  if (args.device.is_cuda()) {
    s.devices = {args.device};
    s.gpu_memory_budget_bytes = budget;
  } else {
    s.force_cpu = true;
    s.cpu_memory_budget_bytes = budget;
  }
  s.max_instances = 1;
  return s;
}

// Registers `entry` with `pool` (a manager on `settings`, through `pool`'s governor).
absl::Status Register(WorkerPool& pool, const Entry& entry, const Settings& settings) {
  if (entry.summarize) {
    MODELPOOL_ASSIGN_OR_RETURN(auto manager,
                               SummarizationModelManager::Create({.model_dir = entry.dir,
                                                                  .max_batch_size = 4,
                                                                  .max_new_tokens = 32,
                                                                  .settings = settings}));
    return pool.RegisterModel<SummarizationModel>(
        entry.name, std::shared_ptr<SummarizationModelManager>(std::move(manager)));
  }
  MODELPOOL_ASSIGN_OR_RETURN(auto manager, EmbeddingModelManager::Create({.model_dir = entry.dir,
                                                                          .dtype = DType::kFloat16,
                                                                          .max_batch_tokens = 8192,
                                                                          .settings = settings}));
  return pool.RegisterModel<EmbeddingModel>(
      entry.name, std::shared_ptr<EmbeddingModelManager>(std::move(manager)));
}

// Each model's footprint, loaded alone.
std::vector<int64_t> MeasureEach(const Args& args) {
  std::vector<int64_t> footprints;
  for (const Entry& entry : args.models) {
    const Settings settings = OnDevice(args, 0);
    auto pool = WorkerPool::Create({.settings = settings});
    if (!pool.ok()) cli::Fail(pool.status());
    if (absl::Status s = Register(**pool, entry, settings); !s.ok()) cli::Fail(s);
    if (absl::Status s = (*pool)->PreloadModel(entry.name, 1); !s.ok()) cli::Fail(s);
    for (const DeviceMemoryStats& d : (*pool)->Stats().devices) {
      if (d.device == args.device) footprints.push_back(d.used_bytes);
    }
    absl::PrintF("{\"what\": \"footprint\", \"model\": \"%s\", \"bytes\": %d}\n", entry.name,
                 footprints.back());
  }
  return footprints;
}

// The measured footprint of one instance of each model, loaded alone. Twice: the first load in
// the process also makes the CUDA context, which is no model's.
std::vector<int64_t> Calibrate(const Args& args) {
  std::vector<int64_t> footprints;
  for (int pass = 0; pass < 2; ++pass) footprints = MeasureEach(args);
  return footprints;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

int Run(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  int64_t budget = 0;
  if (args.budget == "auto") {
    std::vector<int64_t> f = Calibrate(args);
    std::sort(f.rbegin(), f.rend());
    budget = f[0] + f[1] + f.back() / 2;
  } else {
    int64_t mib = 0;
    if (!absl::SimpleAtoi(args.budget, &mib) || mib <= 0) {
      cli::Fail(absl::InvalidArgumentError("--budget-mb takes auto or a number of MiB"));
    }
    budget = mib << 20;
  }
  // The pool first: it makes the device's governor with the capped budget, and the managers
  // take theirs from it.
  const Settings settings = OnDevice(args, budget);
  WorkerSettings workers;
  workers.aging_bound = absl::Seconds(10);
  auto pool = WorkerPool::Create({.settings = settings, .workers = workers});
  if (!pool.ok()) cli::Fail(pool.status());
  for (const Entry& entry : args.models) {
    if (absl::Status s = Register(**pool, entry, settings); !s.ok()) cli::Fail(s);
  }

  std::mutex mu;
  std::map<Priority, std::vector<double>> latency_ms;
  std::atomic<int64_t> requests{0}, texts{0}, errors{0};
  const auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(args.seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::discrete_distribution<int> class_of({10, 20, 40, 15, 15});
      std::discrete_distribution<int> model_of({50, 20, 30});
      std::uniform_int_distribution<size_t> line(0, args.corpus.size() - 1);
      while (std::chrono::steady_clock::now() < stop) {
        const Entry& entry = args.models[static_cast<size_t>(model_of(rng)) % args.models.size()];
        const SubmitOptions options{.priority_class = static_cast<Priority>(class_of(rng))};
        std::vector<std::string> batch;
        for (int i = 0; i < (entry.summarize ? 2 : 16); ++i)
          batch.push_back(args.corpus[line(rng)]);
        const auto start = std::chrono::steady_clock::now();
        bool ok = false;
        if (entry.summarize) {
          ok = (*pool)
                   ->Submit(entry.name, SummarizeRequest{batch, {.max_new_tokens = 32}}, options)
                   .get()
                   .ok();
        } else {
          ok = (*pool)->Submit(entry.name, EmbedRequest{batch, {}}, options).get().ok();
        }
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (!ok) {
          ++errors;
          continue;
        }
        ++requests;
        texts += static_cast<int64_t>(batch.size());
        std::lock_guard<std::mutex> lock(mu);
        latency_ms[options.priority_class].push_back(ms);
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const WorkerPoolStats stats = (*pool)->Stats();
  uint64_t loads = 0, evictions = 0, unloads = 0, switches = 0;
  for (const ModelStats& m : stats.models) {
    loads += m.loads;
    evictions += m.evictions;
    unloads += m.unloads;
  }
  for (const WorkerStats& w : stats.workers) switches += w.switches;
  int64_t peak = 0;
  for (const DeviceMemoryStats& d : stats.devices) {
    if (d.device == args.device) peak = d.peak_used_bytes;
  }
  absl::PrintF(
      "{\"what\": \"scheduler_gpu\", \"budget_bytes\": %d, \"peak_bytes\": %d, \"models\": %d, "
      "\"threads\": %d, \"seconds\": %d, \"requests\": %d, \"texts\": %d, \"errors\": %d, "
      "\"requests_per_s\": %.1f, \"texts_per_s\": %.1f, \"loads\": %d, \"evictions\": %d, "
      "\"unloads\": %d, \"switches\": %d}\n",
      budget, peak, args.models.size(), args.threads, args.seconds, requests.load(), texts.load(),
      errors.load(), static_cast<double>(requests) / args.seconds,
      static_cast<double>(texts) / args.seconds, loads, evictions, unloads, switches);
  for (const auto& [priority, values] : latency_ms) {
    absl::PrintF(
        "{\"what\": \"latency\", \"class\": \"%s\", \"count\": %d, \"p50_ms\": %.1f, "
        "\"p99_ms\": %.1f}\n",
        std::string(PriorityName(priority)), values.size(), Percentile(values, 0.5),
        Percentile(values, 0.99));
  }
  return errors == 0 && peak <= budget ? 0 : 1;
}

}  // namespace
}  // namespace modelpool

int main(int argc, char** argv) { return modelpool::Run(argc, argv); }
