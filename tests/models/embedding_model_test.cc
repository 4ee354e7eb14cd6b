#include "modelpool/models/embedding_model.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "tests/testing/tiny_bert.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using testing::TinyBertSpec;

std::unique_ptr<EmbeddingModel> LoadTiny(const std::string& name, const TinyBertSpec& spec,
                                         int64_t max_batch_tokens = 64) {
  const auto dir = testing::TempDir(name);
  testing::WriteTinyBert(dir, spec);
  auto files = ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  auto model =
      LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, max_batch_tokens);
  REQUIRE(model.ok());
  return *std::move(model);
}

// Rows of [CLS]=2 ... [SEP]=3 with random ids in between, of lengths from 2 to `max_length`.
std::vector<std::vector<int32_t>> RandomRows(int n, int max_length, int vocab) {
  std::mt19937 rng(11);
  std::vector<std::vector<int32_t>> rows;
  for (int i = 0; i < n; ++i) {
    const int length = 2 + static_cast<int>(rng() % (max_length - 1));
    std::vector<int32_t> row = {2};
    while (static_cast<int>(row.size()) < length - 1) row.push_back(5 + rng() % (vocab - 5));
    row.push_back(3);
    rows.push_back(row);
  }
  return rows;
}

float MaxAbsDiff(absl::Span<const float> a, absl::Span<const float> b) {
  float diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(a[i] - b[i]));
  return diff;
}

float Norm(absl::Span<const float> v) {
  double sum = 0;
  for (float x : v) sum += double{x} * x;
  return static_cast<float>(std::sqrt(sum));
}

TEST_CASE("Vectors do not depend on batching, padding or input order") {
  for (const char* pooling : {"mean_tokens", "cls_token", "max_tokens", "lasttoken"}) {
    INFO(pooling);
    auto model = LoadTiny("batching", {.pooling = pooling}, /*max_batch_tokens=*/10000);
    const std::vector<std::vector<int32_t>> rows = RandomRows(23, 12, 20);
    // Batches of a few rows at most, then everything in one batch.
    absl::StatusOr<Embeddings> small = model->EmbedIds(rows, {.max_batch_tokens = 24});
    absl::StatusOr<Embeddings> large = model->EmbedIds(rows, {.max_batch_tokens = 10000});
    REQUIRE(small.ok());
    REQUIRE(large.ok());
    REQUIRE(small->size() == 23);
    REQUIRE(small->dimension() == 8);
    for (size_t i = 0; i < rows.size(); ++i) {
      absl::StatusOr<Embeddings> alone = model->EmbedIds({rows[i]});
      REQUIRE(alone.ok());
      CHECK(MaxAbsDiff((*alone)[0], (*small)[i]) < 1e-5);
      CHECK(MaxAbsDiff((*alone)[0], (*large)[i]) < 1e-5);
    }
  }
}

TEST_CASE("Counts ids and reports progress per batch") {
  auto model = LoadTiny("progress", {});
  const std::vector<std::vector<int32_t>> rows = {{2, 3}, {2, 7, 3}, {2, 7, 8, 9, 3}};
  std::vector<int64_t> done;
  absl::StatusOr<Embeddings> out =
      model->EmbedIds(rows, {.max_batch_tokens = 6, .on_progress = [&](int64_t d, int64_t total) {
                               CHECK(total == 3);
                               done.push_back(d);
                             }});
  REQUIRE(out.ok());
  CHECK(out->num_tokens == 10);
  CHECK(done == std::vector<int64_t>{1, 3});  // the 5-id row alone, then the other two
  CHECK(out->vectors().size() == 3);
  CHECK(out->vectors()[2].size() == 8);
}

TEST_CASE("Vectors are unit length when the folder or the option says so") {
  const std::vector<std::vector<int32_t>> rows = RandomRows(5, 12, 20);
  auto normalized = LoadTiny("normalize", {.normalize = true});
  auto plain = LoadTiny("plain", {});
  absl::StatusOr<Embeddings> a = normalized->EmbedIds(rows);
  absl::StatusOr<Embeddings> b = plain->EmbedIds(rows);
  absl::StatusOr<Embeddings> c = plain->EmbedIds(rows, {.normalize = true});
  absl::StatusOr<Embeddings> d = normalized->EmbedIds(rows, {.normalize = false});
  REQUIRE((a.ok() && b.ok() && c.ok() && d.ok()));
  for (int i = 0; i < 5; ++i) {
    CHECK(Norm((*a)[i]) == Approx(1.0f).epsilon(1e-6));
    CHECK(Norm((*b)[i]) != Approx(1.0f).epsilon(1e-3));
    CHECK(Norm((*c)[i]) == Approx(1.0f).epsilon(1e-6));
    CHECK(MaxAbsDiff((*d)[i], (*b)[i]) < 1e-5);  // same weights, same pooling
  }
}

TEST_CASE("Mean over the square root of the length is the mean times that root") {
  const std::vector<std::vector<int32_t>> rows = RandomRows(6, 12, 20);
  absl::StatusOr<Embeddings> mean = LoadTiny("mean", {})->EmbedIds(rows);
  absl::StatusOr<Embeddings> root =
      LoadTiny("root", {.pooling = "mean_sqrt_len_tokens"})->EmbedIds(rows);
  absl::StatusOr<Embeddings> max = LoadTiny("max", {.pooling = "max_tokens"})->EmbedIds(rows);
  REQUIRE((mean.ok() && root.ok() && max.ok()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const float scale = std::sqrt(static_cast<float>(rows[i].size()));
    for (int j = 0; j < 8; ++j) {
      CHECK((*root)[i][j] == Approx((*mean)[i][j] * scale).margin(1e-5));
      CHECK((*max)[i][j] >= (*mean)[i][j] - 1e-6);
    }
  }
}

TEST_CASE("Rows the model cannot take are InvalidArgument naming the row") {
  auto model = LoadTiny("invalid", {});
  struct Case {
    std::vector<std::vector<int32_t>> rows;
    EmbedOptions options;
    const char* expect;
  };
  const Case cases[] = {
      {{{2, 3}, {}}, {}, "row 1 has no ids"},
      {{std::vector<int32_t>(13, 4)}, {}, "row 0 has 13 ids; the model takes at most 12"},
      {{{2, 20, 3}}, {}, "row 0: id 20 is outside the vocabulary of 20"},
      {{{2, -1, 3}}, {}, "id -1"},
      {{{2, 3}}, {.prompt = "query: "}, "prompt"},
      {{{2, 3}}, {.max_batch_tokens = 65}, "max_batch_tokens 65 is outside 0"},
      {{{2, 3}}, {.max_batch_tokens = -1}, "max_batch_tokens -1"},
  };
  for (const Case& c : cases) {
    const absl::Status status = model->EmbedIds(c.rows, c.options).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains(c.expect));
  }
  absl::StatusOr<Embeddings> none = model->EmbedIds({});
  REQUIRE(none.ok());
  CHECK(none->size() == 0);
}

TEST_CASE("Load refuses a token budget smaller than one full-length text") {
  const auto dir = testing::TempDir("budget");
  testing::WriteTinyBert(dir, {});
  auto files = ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  const absl::Status status =
      LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, 11).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("float16 on the CPU computes in float32; bfloat16 runs as asked") {
  const auto dir = testing::TempDir("dtype");
  testing::WriteTinyBert(dir, {});
  auto files = ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  auto half = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat16, 64);
  auto bf16 = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kBFloat16, 64);
  REQUIRE((half.ok() && bf16.ok()));
  CHECK((*half)->dtype() == DType::kFloat32);
  CHECK((*bf16)->dtype() == DType::kBFloat16);
  const std::vector<std::vector<int32_t>> rows = RandomRows(4, 12, 20);
  absl::StatusOr<Embeddings> a = (*half)->EmbedIds(rows);
  absl::StatusOr<Embeddings> b = (*bf16)->EmbedIds(rows);
  REQUIRE((a.ok() && b.ok()));
  CHECK(b->tensor.scalar_type() == at::kFloat);
  for (int i = 0; i < 4; ++i) CHECK(MaxAbsDiff((*a)[i], (*b)[i]) < 0.2);
}

}  // namespace
}  // namespace modelpool
