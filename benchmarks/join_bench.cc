// join_bench: do many callers sending one text each get about the speed of one corpus? The
// same texts are embedded through a WorkerPool as one corpus (WorkerPool::Embed), then by
// `--callers` threads that each send one text at a time and wait for its vector, with requests
// joined (the pool's batch window) and, for comparison, without.
//
//   join_bench [--model DIR|org/name] [--corpus corpus.txt] [--texts 2048] [--callers 256]
//              [--dtype float16] [--window 2ms] [--repeat 1]
//
// Without --model, the tiny model bundled with the tests, on the CPU; without --corpus, short
// generated sentences. Target: callers with joining >= 0.5x the corpus's tokens/s.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "benchmarks/corpus.h"
#include "modelpool/workers/worker_pool.h"
#include "modelpool/workers/worker_pool_listener.h"

ABSL_FLAG(std::string, model, "",
          "a model folder or Hugging Face id; the bundled tiny model when empty");
ABSL_FLAG(std::string, corpus, "", "texts, one a line; generated sentences when empty");
ABSL_FLAG(int64_t, texts, 2048, "how many texts to embed");
ABSL_FLAG(int64_t, callers, 256, "threads sending one text at a time");
ABSL_FLAG(std::string, dtype, "", "float32, float16 or bfloat16; the model's default when empty");
ABSL_FLAG(absl::Duration, window, absl::Milliseconds(2), "the batch window with joining on");
ABSL_FLAG(int64_t, repeat, 1, "timed runs of each; the best is reported");

namespace {

struct Args {
  std::string model;
  std::vector<std::string> texts;
  int callers = 256;
  std::optional<modelpool::DType> dtype;
  absl::Duration window;
  int repeat = 1;
};

// Short sentences of 4 to 19 words, as chat and search queries are.
std::vector<std::string> Sentences(int64_t count) {
  static const char* const kWords[] = {"the",   "river", "stone",  "quiet", "light",  "market",
                                       "runs",  "under", "bright", "moon",  "across", "every",
                                       "field", "where", "people", "meet",  "after",  "rain"};
  constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);
  std::vector<std::string> texts;
  for (int64_t i = 0; i < count; ++i) {
    std::string text;
    for (int64_t w = 0; w < 4 + (i * 7) % 16; ++w) {
      if (!text.empty()) text += ' ';
      text += kWords[(i * 5 + w * 3) % kNumWords];
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

Args ParseArgs(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "join_bench [--model DIR|org/name] [--corpus FILE] [--texts N] [--callers N] "
      "[--dtype float16] [--window 2ms] [--repeat N]");
  Args args;
  args.model = absl::GetFlag(FLAGS_model);
  if (args.model.empty()) args.model = MODELPOOL_BUNDLED_MODEL;
  const int64_t count = modelpool::cli::InRange(FLAGS_texts, 1, int64_t{1} << 24);
  if (absl::GetFlag(FLAGS_corpus).empty()) {
    args.texts = Sentences(count);
  } else {
    const std::vector<std::string> corpus =
        modelpool::bench::ReadCorpus(absl::GetFlag(FLAGS_corpus));
    for (int64_t i = 0; i < count; ++i) args.texts.push_back(corpus[i % corpus.size()]);
  }
  args.callers = static_cast<int>(modelpool::cli::InRange(FLAGS_callers, 1, 4096));
  if (!absl::GetFlag(FLAGS_dtype).empty()) args.dtype = modelpool::cli::DTypeOf(FLAGS_dtype);
  args.window = absl::GetFlag(FLAGS_window);
  if (args.window < absl::ZeroDuration() || args.window > absl::Seconds(10)) {
    modelpool::cli::Fail("--window must lie in [0, 10s]");
  }
  args.repeat = static_cast<int>(modelpool::cli::InRange(FLAGS_repeat, 1, 100));
  return args;
}

struct Run {
  double seconds = 0;
  int64_t tokens = 0;
  double requests_per_call = 0;
  double tok_per_s() const { return seconds > 0 ? tokens / seconds : 0; }
};

// Counts the calls the workers make and the requests in them.
class CallCounter : public modelpool::WorkerPoolListener {
 public:
  void OnBatchRun(const modelpool::BatchInfo& batch) override {
    ++calls_;
    requests_ += batch.requests;
  }
  void Reset() { calls_ = requests_ = 0; }
  double requests_per_call() const {
    return calls_ > 0 ? static_cast<double>(requests_) / calls_ : 0;
  }

 private:
  std::atomic<int64_t> calls_{0};
  std::atomic<int64_t> requests_{0};
};

// A pool with one worker per device and the model registered as "bench", warmed up.
std::unique_ptr<modelpool::WorkerPool> MakePool(const Args& args, absl::Duration window) {
  modelpool::WorkerSettings workers;
  workers.batch_window = window;
  auto manager =
      modelpool::EmbeddingModelManager::Create({.model_dir = args.model, .dtype = args.dtype});
  if (!manager.ok()) modelpool::cli::Fail(manager.status());
  std::shared_ptr<modelpool::EmbeddingModelManager> embedder(*std::move(manager));
  auto pool = modelpool::WorkerPool::Create({.workers = workers});
  if (!pool.ok()) modelpool::cli::Fail(pool.status());
  if (auto s = (*pool)->RegisterModel<modelpool::EmbeddingModel>("bench", embedder); !s.ok()) {
    modelpool::cli::Fail(s);
  }
  const std::vector<std::string> warm_up(
      args.texts.begin(), args.texts.begin() + std::min<size_t>(512, args.texts.size()));
  if (auto out = (*pool)->Embed("bench", warm_up); !out.ok()) modelpool::cli::Fail(out.status());
  return *std::move(pool);
}

Run Corpus(modelpool::WorkerPool& pool, const std::vector<std::string>& texts) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<modelpool::Embeddings> out = pool.Embed("bench", texts);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!out.ok()) modelpool::cli::Fail(out.status());
  return {seconds, out->num_tokens};
}

// `callers` threads, each sending the next text alone and waiting for its vector.
Run Callers(modelpool::WorkerPool& pool, const std::vector<std::string>& texts, int callers) {
  std::atomic<size_t> next{0};
  std::atomic<int64_t> tokens{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < texts.size(); i = next++) {
        absl::StatusOr<modelpool::Embeddings> out =
            pool.Submit("bench", modelpool::EmbedRequest{.texts = {texts[i]}}).get();
        if (!out.ok()) {
          std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
          failed = true;
          return;
        }
        tokens += out->num_tokens;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) modelpool::cli::Fail("a caller's request failed");
  return {seconds, tokens.load()};
}

template <typename Fn>
Run Best(modelpool::WorkerPool& pool, int repeat, Fn fn) {
  auto listener = std::make_shared<CallCounter>();
  CallCounter& counter = *listener;
  pool.AddListener(listener);
  Run best;
  for (int r = 0; r < repeat; ++r) {
    counter.Reset();
    Run run = fn();
    run.requests_per_call = counter.requests_per_call();
    if (best.seconds == 0 || run.seconds < best.seconds) best = run;
  }
  pool.RemoveListener(listener.get());
  return best;
}

void Print(const char* mode, const Args& args, absl::Duration window, const Run& run) {
  absl::PrintF(
      "{\"what\": \"modelpool_join\", \"mode\": \"%s\", \"texts\": %d, \"callers\": %d, "
      "\"window_ms\": %.3f, \"tokens\": %d, \"seconds\": %.4f, \"tok_per_s\": %.0f, "
      "\"requests_per_call\": %.2f}\n",
      mode, args.texts.size(), std::string(mode) == "corpus" ? 1 : args.callers,
      absl::ToDoubleMilliseconds(window), run.tokens, run.seconds, run.tok_per_s(),
      run.requests_per_call);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  Run corpus, joined, alone;
  {
    std::unique_ptr<modelpool::WorkerPool> pool = MakePool(args, args.window);
    corpus = Best(*pool, args.repeat, [&] { return Corpus(*pool, args.texts); });
    Print("corpus", args, args.window, corpus);
    joined = Best(*pool, args.repeat, [&] { return Callers(*pool, args.texts, args.callers); });
    Print("callers_joined", args, args.window, joined);
  }
  {
    std::unique_ptr<modelpool::WorkerPool> pool = MakePool(args, absl::ZeroDuration());
    alone = Best(*pool, args.repeat, [&] { return Callers(*pool, args.texts, args.callers); });
    Print("callers_alone", args, absl::ZeroDuration(), alone);
  }
  absl::PrintF("\n%-44s %12s\n", "", "tokens/s");
  absl::PrintF("%-44s %12.0f\n", "one corpus (WorkerPool::Embed)", corpus.tok_per_s());
  absl::PrintF("%-44s %12.0f\n", absl::StrFormat("%d callers, one text each, joined", args.callers),
               joined.tok_per_s());
  absl::PrintF("%-44s %12.0f\n", absl::StrFormat("%d callers, one text each, alone", args.callers),
               alone.tok_per_s());
  absl::PrintF("%-44s %11.2fx   (target >= 0.5x)\n", "joined callers / corpus",
               joined.tok_per_s() / corpus.tok_per_s());
  absl::PrintF("%-44s %11.2fx\n", "joined callers / callers alone",
               joined.tok_per_s() / alone.tok_per_s());
  absl::PrintF("%-44s %12.2f\n", "requests per call, joined", joined.requests_per_call);
  return 0;
}
