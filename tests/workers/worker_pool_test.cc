#include "modelpool/workers/worker_pool.h"

#include <ATen/ATen.h>

#include <cmath>
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

}  // namespace
}  // namespace modelpool
