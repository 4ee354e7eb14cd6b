#include "modelpool/workers/worker_pool.h"

#include <ATen/ATen.h>

#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

std::unique_ptr<WorkerPool> MakePool(bool enabled) {
  auto pool = WorkerPool::Create({.settings = CpuSettings(), .workers = Workers(enabled)});
  REQUIRE(pool.ok());
  return *std::move(pool);
}

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
  auto manager = SummarizationModelManager::Create({.model_dir = kData + "/models/t5-tiny-relu",
                                                    .max_batch_size = 4,
                                                    .max_new_tokens = 16,
                                                    .settings = CpuSettings()});
  REQUIRE(manager.ok());
  std::shared_ptr<SummarizationModelManager> summarizer(*std::move(manager));
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

TEST_CASE("A batch that runs out of memory is split and retried; a text too big fails alone") {
  auto embedder = Embedder();
  const std::vector<std::string> texts = Corpus(8);
  absl::StatusOr<Embeddings> direct = embedder->Embed(texts);
  REQUIRE(direct.ok());
  auto once = std::make_shared<FaultInjector>(
      std::vector<FaultRule>{{.kind = FaultKind::kOutOfMemory, .nth = 1}});
  auto pool = OneWorkerPool(once);
  REQUIRE(pool->RegisterModel<EmbeddingModel>("tiny", embedder).ok());
  absl::StatusOr<Embeddings> split = pool->Submit("tiny", EmbedRequest{texts, {}}).get();
  REQUIRE(split.ok());
  REQUIRE(split->size() == 8);
  CHECK(MaxAbsDiff(split->tensor, direct->tensor) < 1e-5);
  ModelStats stats = pool->Stats().models.at(0);
  CHECK(stats.out_of_memory == 1);
  CHECK(stats.split_retries == 1);

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

}  // namespace
}  // namespace modelpool
