// RoBERTa and XLM-RoBERTa: BERT's layers with RoBERTa's positions (Note [RoBERTa positions]).
#include "lib/models/roberta/roberta_encoder.h"

#include <string>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "lib/models/registry.h"
#include "modelpool/models/embedding_model.h"
#include "tests/testing/tiny_bert.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using testing::TinyBertSpec;
using Rows = std::vector<std::vector<int32_t>>;

// A RoBERTa folder: <s> 0, <pad> 1, </s> 2; the position table has pad_token_id + 1 = 2 rows
// more than `spec.positions`.
TinyBertSpec Roberta(TinyBertSpec spec = {}) {
  spec.model_type = "roberta";
  spec.pad_token_id = 1;
  spec.first_position_rows = 2;
  return spec;
}

absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> ReadTiny(const std::string& name,
                                                                    const TinyBertSpec& spec) {
  const auto dir = testing::TempDir(name);
  testing::WriteTinyBert(dir, spec);
  return ReadEmbeddingModelFiles(dir.string());
}

std::unique_ptr<EmbeddingModel> LoadTiny(const std::string& name, const TinyBertSpec& spec) {
  auto files = ReadTiny(name, spec);
  REQUIRE(files.ok());
  auto model = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, 64);
  REQUIRE(model.ok());
  return *std::move(model);
}

std::vector<std::vector<float>> Embed(EmbeddingModel& model, const Rows& rows) {
  auto out = model.EmbedIds(rows);
  REQUIRE(out.ok());
  return out->vectors();
}

bool Close(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-5f) return false;
  }
  return a.size() == b.size();
}

// Rows without the padding id (1), of several lengths.
const Rows kRows = {{0, 5, 9, 2}, {0, 7, 2}, {0, 4, 5, 6, 7, 8, 9, 10, 2}, {0, 2}};

TEST_CASE("RoBERTa is BERT with positions counted from pad_token_id + 1") {
  // The same random weights; RoBERTa's table has two more rows, first, that BERT's lacks.
  const TinyBertSpec bert{.pooling = "cls_token"};
  auto bert_model = LoadTiny("roberta_as_bert", bert);
  for (const char* type : {"roberta", "xlm-roberta"}) {
    INFO(type);
    TinyBertSpec roberta = Roberta(bert);
    roberta.model_type = type;
    roberta.max_seq_length = 16;
    auto model = LoadTiny(std::string("roberta_") + type, roberta);
    CHECK(model->max_seq_length() == 16);  // positions past the offset: 18 - 2
    const auto expected = Embed(*bert_model, kRows);
    const auto got = Embed(*model, kRows);
    for (size_t i = 0; i < kRows.size(); ++i) {
      INFO("row " << i);
      CHECK(Close(got[i], expected[i]));
    }
  }
}

TEST_CASE("RoBERTa weights load bare or under roberta.") {
  auto bare = LoadTiny("roberta_bare", Roberta());
  TinyBertSpec prefixed = Roberta();
  prefixed.prefix = "roberta.";
  auto under_prefix = LoadTiny("roberta_prefixed", prefixed);
  const auto a = Embed(*bare, kRows);
  const auto b = Embed(*under_prefix, kRows);
  for (size_t i = 0; i < kRows.size(); ++i) CHECK(Close(a[i], b[i]));
}

TEST_CASE("A padding id inside a row takes position pad_token_id and is not counted") {
  // Row [<s>, 5, <pad>, 6, </s>]: positions 2, 3, 1, 4, 5, as transformers gives them. So the
  // table's row 6 (what a count of every token would reach) does not matter, and row 1 does.
  const Rows with_pad = {{0, 5, 1, 6, 2}};
  const Rows without_pad = {{0, 5, 7, 6, 2}};
  auto changed_row = [](int64_t row) {
    TinyBertSpec spec = Roberta();
    spec.fill = [row](const std::string& name, at::Tensor& values) {
      // Not a constant: LayerNorm would take a constant away.
      if (name == "embeddings.position_embeddings.weight") {
        values[row].copy_(at::linspace(-2.0, 2.0, values.size(1)));
      }
    };
    return spec;
  };
  auto base = LoadTiny("roberta_pad_base", Roberta());
  auto row_six = LoadTiny("roberta_pad_row6", changed_row(6));
  auto row_one = LoadTiny("roberta_pad_row1", changed_row(1));
  CHECK(Close(Embed(*row_six, with_pad)[0], Embed(*base, with_pad)[0]));
  CHECK_FALSE(Close(Embed(*row_six, without_pad)[0], Embed(*base, without_pad)[0]));
  CHECK_FALSE(Close(Embed(*row_one, with_pad)[0], Embed(*base, with_pad)[0]));
  CHECK(Close(Embed(*row_one, without_pad)[0], Embed(*base, without_pad)[0]));

  // In a packed batch, each row counts from its own start.
  auto model = LoadTiny("roberta_pad_batch", Roberta());
  Rows batch = kRows;
  batch.push_back(with_pad[0]);
  const auto together = Embed(*model, batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    INFO("row " << i);
    CHECK(Close(together[i], Embed(*model, {batch[i]})[0]));
  }
}

TEST_CASE("RoBERTa configs and checkpoints are checked, naming the file and the field") {
  TinyBertSpec no_room = Roberta();
  no_room.positions = 0;  // max_position_embeddings 2: no position past the offset
  auto files = ReadTiny("roberta_no_room", no_room);
  REQUIRE_FALSE(files.ok());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(files.status().message()),
             Catch::Contains("max_position_embeddings 2 leaves no position"));
  CHECK_THAT(std::string(files.status().message()), Catch::Contains("config.json"));

  TinyBertSpec missing = Roberta();
  missing.prefix = "roberta.";
  missing.edit = [](std::string& name, std::vector<int64_t>&) {
    if (name == "roberta.encoder.layer.1.output.dense.bias") name.clear();
  };
  files = ReadTiny("roberta_missing", missing);
  REQUIRE_FALSE(files.ok());
  CHECK(files.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(files.status().message()),
             Catch::Contains("roberta.encoder.layer.1.output.dense.bias"));

  TinyBertSpec deberta = Roberta();
  deberta.model_type = "deberta-v2";
  files = ReadTiny("roberta_deberta", deberta);
  REQUIRE_FALSE(files.ok());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string message(files.status().message());
  CHECK_THAT(message, Catch::Contains("'deberta-v2'"));
  CHECK_THAT(message, Catch::Contains("roberta"));
  CHECK_THAT(message, Catch::Contains("xlm-roberta"));
}

}  // namespace
}  // namespace modelpool
