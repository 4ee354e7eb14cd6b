// RoBERTa and XLM-RoBERTa against sentence-transformers: the folders and vectors that
// tools/make_roberta_fixtures.py recorded.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/text/tokenizer.h"
#include "tests/testing/bert_reference.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using testing::BertReference;
using testing::Cosine;
using testing::Norm;

// The models whose fixtures tools/make_roberta_fixtures.py wrote (CMake builds this test when
// there is one).
std::vector<std::string> Models() {
  std::vector<std::string> models;
  for (const char* name : {"roberta-tiny-mean", "xlm-roberta-tiny-cls"}) {
    if (std::filesystem::exists(std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/roberta/" + name +
                                ".json")) {
      models.push_back(name);
    } else {
      WARN("no fixture for " << name);
    }
  }
  REQUIRE_FALSE(models.empty());
  return models;
}

BertReference Read(const std::string& name) {
  absl::StatusOr<BertReference> reference =
      testing::ReadBertReference(MODELPOOL_SOURCE_DIR, name, "roberta");
  REQUIRE(reference.ok());
  return *std::move(reference);
}

TEST_CASE("RoBERTa and XLM-R vectors from ids match sentence-transformers' in float32") {
  for (const std::string& name : Models()) {
    INFO(name);
    const BertReference reference = Read(name);
    auto files = ReadEmbeddingModelFiles(reference.model_dir);
    REQUIRE(files.ok());
    CHECK((*files)->max_seq_length == reference.max_seq_length);
    auto model = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, 256);
    REQUIRE(model.ok());
    std::vector<std::vector<int32_t>> rows;
    for (const auto& c : reference.cases) rows.push_back(c.input_ids);
    // A small budget: many batches, most of them padded where attention pads.
    absl::StatusOr<Embeddings> out = (*model)->EmbedIds(rows, {.max_batch_tokens = 200});
    REQUIRE(out.ok());
    REQUIRE(out->size() == static_cast<int64_t>(rows.size()));
    REQUIRE(out->dimension() == reference.dimension);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& c = reference.cases[i];
      INFO("case " << i << ": prompt '" << c.prompt << "', text '" << c.text << "'");
      CHECK(Cosine((*out)[i], c.ids_embedding) >= 0.99999);
      CHECK(std::abs(Norm((*out)[i]) - Norm(c.ids_embedding)) <= 1e-4 * Norm(c.ids_embedding));
    }
  }
}

TEST_CASE("RoBERTa and XLM-R texts embed as sentence-transformers embeds them") {
  for (const std::string& name : Models()) {
    INFO(name);
    const BertReference reference = Read(name);
    auto files = ReadEmbeddingModelFiles(reference.model_dir);
    REQUIRE(files.ok());
    auto tokenizer = LoadTokenizer(reference.model_dir);
    REQUIRE(tokenizer.ok());
    std::shared_ptr<const Tokenizer> shared = *std::move(tokenizer);
    auto model = LoadEmbeddingModel(*files, shared, Device::Cpu(), DType::kFloat32, 256);
    REQUIRE(model.ok());
    for (const auto& c : reference.cases) {
      INFO("prompt '" << c.prompt << "', text '" << c.text << "'");
      CHECK(shared->Encode(c.prompt + c.text, {.max_length = 64}) == c.input_ids);
      absl::StatusOr<Embeddings> out = (*model)->Embed({c.text}, {.prompt = c.prompt});
      REQUIRE(out.ok());
      CHECK(Cosine((*out)[0], c.embedding) >= 0.99999);
    }
  }
}

}  // namespace
}  // namespace modelpool
