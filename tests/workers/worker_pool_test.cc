#include "modelpool/workers/worker_pool.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "modelpool/workers/worker_pool_listener.h"
#include "tests/testing/eventually.h"

// After libtorch's headers, whose logging defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

const std::string kData = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data";

Settings CpuSettings() {
  Settings s;
  s.force_cpu = true;
  s.max_instances = 2;
  return s;
}

WorkerSettings Workers(bool worker_pool) {
  WorkerSettings w;
  w.workers_per_device = 2;
  w.worker_pool = worker_pool;
  return w;
}

std::vector<std::string> Corpus(int n) {
  const std::vector<std::string> words = {"river",           "stone", "quiet", "light", "market",
                                          "écoute",          "北京",  "table", "run",   "moon",
                                          "zero-width\u200b"};
  std::vector<std::string> corpus;
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int w = 0; w < 1 + (i * 7) % 40; ++w) text += words[(i + w * 3) % words.size()] + " ";
    corpus.push_back(text);
  }
  return corpus;
}

float MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<float>();
}

std::unique_ptr<WorkerPool> MakePool(bool enabled, int workers_per_device = 2) {
  WorkerSettings workers = Workers(enabled);
  workers.workers_per_device = workers_per_device;
  auto pool = WorkerPool::Create({.settings = CpuSettings(), .workers = workers});
  REQUIRE(pool.ok());
  return *std::move(pool);
}

std::shared_ptr<SummarizationModelManager> Summarizer() {
  auto manager = SummarizationModelManager::Create({.model_dir = kData + "/models/t5-tiny-relu",
                                                    .max_batch_size = 4,
                                                    .max_new_tokens = 16,
                                                    .settings = CpuSettings()});
  REQUIRE(manager.ok());
  return std::shared_ptr<SummarizationModelManager>(*std::move(manager));
}

// Holds a pool's only worker, with an instance of `model_id`, until `Open()`, so that requests
// queue behind it and join.
template <typename T>
class Gate {
 public:
  Gate(WorkerPool& pool, const std::string& model_id) {
    std::shared_future<void> open = opens_;
    held_ = pool.GenericWorkerPool::SubmitTask<T, int>(model_id, [open](T&) -> absl::StatusOr<int> {
      open.wait();
      return 0;
    });
    while (pool.Stats().models.empty() || pool.Stats().workers[0].state != WorkerState::kBusy) {
      std::this_thread::yield();
    }
  }
  ~Gate() { Open(); }
  void Open() {
    if (opened_) return;
    opened_ = true;
    gate_.set_value();
    (void)held_.get();
  }

 private:
  std::promise<void> gate_;
  std::shared_future<void> opens_ = gate_.get_future().share();
  std::future<absl::StatusOr<int>> held_;
  bool opened_ = false;
};

// Counts the calls a pool makes and the requests in the largest.
struct CallCounter : WorkerPoolListener {
  void OnBatchRun(const BatchInfo& batch) override {
    ++calls;
    largest = std::max(largest.load(), batch.requests);
  }
  std::atomic<int> calls{0};
  std::atomic<int> largest{0};
};

std::shared_ptr<EmbeddingModelManager> Embedder() {
  auto manager = EmbeddingModelManager::Create(
      {.model_dir = kData + "/models/bert-tiny-cls", .settings = CpuSettings()});
  REQUIRE(manager.ok());
  return std::shared_ptr<EmbeddingModelManager>(*std::move(manager));
}

TEST_CASE("Embed over the workers gives the manager's vectors, in input order") {
  const std::vector<std::string> corpus = Corpus(300);
  auto embedder = Embedder();
  absl::StatusOr<Embeddings> direct = embedder->Embed(corpus);
  REQUIRE(direct.ok());

  for (bool enabled : {true, false}) {
    INFO("worker pool " << (enabled ? "on" : "off"));
    auto pool = MakePool(enabled);
    REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
    std::vector<int64_t> progress;
    absl::StatusOr<Embeddings> spread = pool->Embed(
        "tiny", corpus, {.on_progress = [&](int64_t done, int64_t) { progress.push_back(done); }});
    REQUIRE(spread.ok());
    REQUIRE(spread->size() == 300);
    CHECK(MaxAbsDiff(spread->tensor, direct->tensor) < 1e-5);
    CHECK(spread->num_tokens == direct->num_tokens);
    CHECK(spread->row_tokens == direct->row_tokens);
    CHECK(spread->truncated_rows == direct->truncated_rows);
    CHECK(spread->num_truncated == static_cast<int64_t>(spread->truncated_rows.size()));
    REQUIRE_FALSE(progress.empty());
    CHECK(progress.back() == 300);
  }
}

TEST_CASE("EmbedBatches and Submit return each batch's own vectors") {
  const std::vector<std::string> corpus = Corpus(40);
  auto embedder = Embedder();
  auto pool = MakePool(true);
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  std::vector<std::vector<std::string>> batches = {{corpus.begin(), corpus.begin() + 10},
                                                   {corpus.begin() + 10, corpus.end()}};
  absl::StatusOr<std::vector<Embeddings>> out = pool->EmbedBatches("tiny", batches);
  REQUIRE(out.ok());
  REQUIRE(out->size() == 2);
  absl::StatusOr<Embeddings> second = pool->Submit("tiny", EmbedRequest{batches[1], {}}).get();
  REQUIRE(second.ok());
  CHECK(MaxAbsDiff((*out)[1].tensor, second->tensor) < 1e-5);
  CHECK((*out)[0].size() == 10);
  // A request to a model of another kind is refused, not run.
  CHECK(pool->Submit("tiny", SummarizeRequest{{"x"}, {}}).get().status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A stream of texts gives the same vectors as one call, in order") {
  const std::vector<std::string> corpus = Corpus(120);
  auto embedder = Embedder();
  absl::StatusOr<Embeddings> direct = embedder->Embed(corpus);
  REQUIRE(direct.ok());
  auto pool = MakePool(true);
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  auto stream = pool->StreamEmbeddings("tiny", {.max_batch_cost = 64, .max_in_flight = 16});
  std::thread producer([&] {
    for (const std::string& text : corpus) (void)stream->Push(text);
    stream->Close();
  });
  std::vector<std::vector<float>> got;
  for (;;) {
    absl::StatusOr<std::optional<std::vector<float>>> next = stream->Next();
    if (!next.ok() || !next->has_value()) break;
    got.push_back(**next);
  }
  producer.join();
  REQUIRE(got.size() == corpus.size());
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    for (size_t j = 0; j < got[i].size(); ++j) {
      worst = std::max(worst, std::abs(got[i][j] - (*direct)[static_cast<int64_t>(i)][j]));
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("Summarize over the workers gives the manager's summaries, in input order") {
  std::shared_ptr<SummarizationModelManager> summarizer = Summarizer();
  const std::vector<std::string> docs = Corpus(12);
  const GenerationOptions generation{.max_new_tokens = 12, .num_beams = 2};
  absl::StatusOr<std::vector<std::string>> direct = summarizer->Summarize(docs, generation);
  REQUIRE(direct.ok());
  auto pool = MakePool(true);
  REQUIRE(pool->RegisterModel<SummarizationModel>("t5", summarizer).ok());
  absl::StatusOr<std::vector<std::string>> spread =
      pool->Summarize("t5", docs, generation, {.texts_per_request = 5});
  REQUIRE(spread.ok());
  CHECK(*spread == *direct);
}

std::unique_ptr<WorkerPool> OneWorkerPool(std::shared_ptr<FaultInjector> faults = nullptr) {
  WorkerSettings workers;
  workers.workers_per_device = 1;
  auto pool = WorkerPool::Create(
      {.settings = CpuSettings(), .workers = workers, .faults = std::move(faults)});
  REQUIRE(pool.ok());
  return *std::move(pool);
}

TEST_CASE("Identical requests in flight run once and each caller gets its own copy") {
  auto pool = OneWorkerPool();
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", Embedder()).ok());
  // Hold the only worker so that the requests wait together.
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  auto held = pool->SubmitTask<EmbeddingModel, int>("tiny", [open](EmbeddingModel&) {
    open.wait();
    return absl::StatusOr<int>(0);
  });
  const std::vector<std::string> texts = Corpus(5);
  JobHandle<Embeddings> a = pool->SubmitJob("tiny", EmbedRequest{texts, {}});
  JobHandle<Embeddings> b = pool->SubmitJob("tiny", EmbedRequest{texts, {}});
  JobHandle<Embeddings> alone =
      pool->SubmitJob("tiny", EmbedRequest{texts, {}}, {.merge_identical = false});
  JobHandle<Embeddings> other = pool->SubmitJob("tiny", EmbedRequest{Corpus(4), {}});
  CHECK(a.id == b.id);
  CHECK(alone.id != a.id);
  CHECK(other.id != a.id);
  gate.set_value();
  REQUIRE(held.get().ok());
  absl::StatusOr<Embeddings> ra = a.result.get();
  absl::StatusOr<Embeddings> rb = b.result.get();
  absl::StatusOr<Embeddings> ralone = alone.result.get();
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  REQUIRE(ralone.ok());
  REQUIRE(other.result.get().ok());
  CHECK(MaxAbsDiff(ra->tensor, rb->tensor) == 0);
  CHECK(MaxAbsDiff(ra->tensor, ralone->tensor) < 1e-5);
  CHECK(ra->tensor.data_ptr() != rb->tensor.data_ptr());  // each caller owns its vectors
  const ModelStats stats = pool->Stats().models.at(0);
  CHECK(stats.merged == 1);
  CHECK(stats.submitted == 4);  // the gate, a, alone, other
}

TEST_CASE("A request run alone reports the tokens its result counted, not the estimate") {
  struct Recorder : WorkerPoolListener {
    void OnBatchRun(const BatchInfo& batch) override {
      absl::MutexLock lock(&mu);
      tokens.push_back(batch.tokens);
    }
    std::vector<int64_t> Tokens() {
      absl::MutexLock lock(&mu);
      return tokens;
    }
    absl::Mutex mu;
    std::vector<int64_t> tokens ABSL_GUARDED_BY(mu);
  };
  auto pool = OneWorkerPool();
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", Embedder()).ok());
  auto recorder = std::make_shared<Recorder>();
  pool->AddListener(recorder);
  absl::StatusOr<Embeddings> out =
      pool->Submit("tiny", EmbedRequest{Corpus(3), {}}, {.tokens = 1}).get();
  REQUIRE(out.ok());
  REQUIRE(out->num_tokens > 1);
  CHECK(testing::Eventually([&] { return !recorder->Tokens().empty(); }));
  pool->RemoveListener(recorder.get());
  CHECK(recorder->Tokens() == std::vector<int64_t>{out->num_tokens});
}

TEST_CASE("A batch that runs out of memory is split and retried; a text too big fails alone") {
  auto embedder = Embedder();
  std::vector<std::string> texts = Corpus(8);
  texts[5].clear();  // cut at the model's maximum length: the split keeps its row number
  for (int i = 0; i < 200; ++i) texts[5] += "river ";
  absl::StatusOr<Embeddings> direct = embedder->Embed(texts);
  REQUIRE(direct.ok());
  REQUIRE(std::count(direct->truncated_rows.begin(), direct->truncated_rows.end(), 5) == 1);
  auto once = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .nth = 1}});
  auto pool = OneWorkerPool(once);
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  absl::StatusOr<Embeddings> split = pool->Submit("tiny", EmbedRequest{texts, {}}).get();
  REQUIRE(split.ok());
  REQUIRE(split->size() == 8);
  CHECK(MaxAbsDiff(split->tensor, direct->tensor) < 1e-5);
  CHECK(split->num_tokens == direct->num_tokens);
  CHECK(split->row_tokens == direct->row_tokens);
  CHECK(split->truncated_rows == direct->truncated_rows);
  ModelStats stats = pool->Stats().models.at(0);
  CHECK(stats.out_of_memory == 1);
  CHECK(stats.split_retries == 1);

  // A request of ids is split the same way.
  const std::vector<std::vector<int32_t>> ids = {{2, 40, 41, 3}, {2, 50, 3}, {2, 60, 61, 62, 3}};
  absl::StatusOr<Embeddings> direct_ids;
  {
    auto lease = embedder->Acquire(absl::Seconds(10));
    REQUIRE(lease.ok());
    direct_ids = (*lease)->EmbedIds(ids);
  }
  REQUIRE(direct_ids.ok());
  // Twice: a retry of the whole request alone would fail again.
  auto ids_twice = std::make_shared<FaultInjector>(std::vector<FaultRule>{
      {.kind = FaultKind::kOutOfMemory, .nth = 1}, {.kind = FaultKind::kOutOfMemory, .nth = 2}});
  auto ids_pool = OneWorkerPool(ids_twice);
  REQUIRE(ids_pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  absl::StatusOr<Embeddings> split_ids =
      ids_pool->Submit("tiny", EmbedRequest{.token_ids = ids}).get();
  REQUIRE(split_ids.ok());
  REQUIRE(split_ids->size() == 3);
  CHECK(MaxAbsDiff(split_ids->tensor, direct_ids->tensor) < 1e-5);
  CHECK(split_ids->row_tokens == direct_ids->row_tokens);
  CHECK(ids_pool->Stats().models.at(0).split_retries >= 2);

  auto always = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .probability = 1}});
  auto failing = OneWorkerPool(always);
  REQUIRE(failing->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  absl::StatusOr<Embeddings> none = failing->Submit("tiny", EmbedRequest{texts, {}}).get();
  CHECK(none.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(none.status().message()),
             Catch::Contains("text 0 of 8 does not fit") && Catch::Contains("even alone"));
}

TEST_CASE("The default deep check runs one text on each loaded instance") {
  auto pool = OneWorkerPool();
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", Embedder()).ok());
  REQUIRE(pool->Submit("tiny", EmbedRequest{Corpus(2), {}}).get().ok());
  absl::StatusOr<Health> health = pool->CheckHealth(absl::Seconds(60));
  REQUIRE(health.ok());
  CHECK(health->level == HealthLevel::kHealthy);
  const ModelStats stats = pool->Stats().models.at(0);
  CHECK(stats.checks == 1);
  CHECK(stats.checks_failed == 0);
}

TEST_CASE("Embedding requests joined together give each caller its own vectors and counts") {
  const std::vector<std::string> corpus = Corpus(30);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "river stone ";
  auto embedder = Embedder();
  auto pool = MakePool(true, /*workers_per_device=*/1);
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  auto listener = std::make_shared<CallCounter>();
  CallCounter& counter = *listener;
  pool->AddListener(listener);
  std::vector<std::future<absl::StatusOr<Embeddings>>> texts;
  std::future<absl::StatusOr<Embeddings>> cut, ids, bad_ids;
  {
    Gate<EmbeddingModel> gate(*pool, "tiny");
    for (const std::string& text : corpus)
      texts.push_back(pool->Submit("tiny", EmbedRequest{.texts = {text}}));
    cut = pool->Submit("tiny", EmbedRequest{.texts = {corpus[0], long_text}});
    ids = pool->Submit("tiny", EmbedRequest{.token_ids = {{2, 17, 3}}});
    bad_ids = pool->Submit("tiny", EmbedRequest{.token_ids = {{2, 1 << 30, 3}}});
  }
  for (size_t i = 0; i < corpus.size(); ++i) {
    absl::StatusOr<Embeddings> got = texts[i].get();
    absl::StatusOr<Embeddings> alone = embedder->Embed({corpus[i]});
    REQUIRE(got.ok());
    REQUIRE(alone.ok());
    CHECK(got->size() == 1);
    CHECK(MaxAbsDiff(got->tensor, alone->tensor) < 1e-5);
    CHECK(got->num_tokens == alone->num_tokens);
    CHECK(got->row_tokens == alone->row_tokens);
    CHECK(got->truncated_rows == alone->truncated_rows);
    CHECK(got->num_truncated == alone->num_truncated);
  }
  absl::StatusOr<Embeddings> truncated = cut.get();
  REQUIRE(truncated.ok());
  CHECK(truncated->truncated_rows == std::vector<int64_t>{1});
  CHECK(truncated->num_truncated == 1);
  // Ids join ids, and the bad row fails its own request only.
  absl::StatusOr<Embeddings> from_ids = ids.get();
  REQUIRE(from_ids.ok());
  CHECK(from_ids->num_tokens == 3);
  CHECK(bad_ids.get().status().code() == absl::StatusCode::kInvalidArgument);
  // The gate, the joined texts, and the ids (the bad one then alone).
  CHECK(counter.largest == static_cast<int>(corpus.size()) + 1);
  CHECK(counter.calls <= 4);
  pool->RemoveListener(listener.get());
}

TEST_CASE("Summarization requests joined together give the summaries of each alone") {
  std::shared_ptr<SummarizationModelManager> summarizer = Summarizer();
  const std::vector<std::string> docs = Corpus(6);
  const GenerationOptions generation{.max_new_tokens = 8};
  auto pool = MakePool(true, /*workers_per_device=*/1);
  REQUIRE(pool->RegisterModel<SummarizationModel>("t5", summarizer).ok());
  auto listener = std::make_shared<CallCounter>();
  CallCounter& counter = *listener;
  pool->AddListener(listener);
  std::vector<std::future<absl::StatusOr<std::vector<std::string>>>> futures;
  {
    Gate<SummarizationModel> gate(*pool, "t5");
    for (const std::string& doc : docs) {
      futures.push_back(pool->Submit("t5", SummarizeRequest{{doc}, generation}));
    }
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    absl::StatusOr<std::vector<std::string>> got = futures[i].get();
    absl::StatusOr<std::vector<std::string>> alone = summarizer->Summarize({docs[i]}, generation);
    REQUIRE(got.ok());
    REQUIRE(alone.ok());
    CHECK(*got == *alone);
  }
  CHECK(counter.largest == static_cast<int>(docs.size()));
  pool->RemoveListener(listener.get());
}

}  // namespace
}  // namespace modelpool
