// EmbeddingModel against sentence-transformers, from the ids its tokenizer gave.

#include <string>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/models/embedding_model.h"
#include "tests/testing/bert_reference.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using testing::BertReference;
using testing::Cosine;
using testing::Norm;

TEST_CASE("Vectors from ids match sentence-transformers' in float32 on the CPU") {
  for (const char* name : {"bert-tiny-cls", "bert-tiny-mean"}) {
    INFO(name);
    absl::StatusOr<BertReference> reference =
        testing::ReadBertReference(MODELPOOL_SOURCE_DIR, name);
    REQUIRE(reference.ok());
    auto files = ReadEmbeddingModelFiles(reference->model_dir);
    REQUIRE(files.ok());
    CHECK((*files)->max_seq_length == reference->max_seq_length);
    auto model = LoadEmbeddingModel(*files, nullptr, Device::Cpu(), DType::kFloat32, 256);
    REQUIRE(model.ok());
    std::vector<std::vector<int32_t>> rows;
    for (const auto& c : reference->cases) rows.push_back(c.input_ids);
    // A small budget: many batches, most of them padded.
    absl::StatusOr<Embeddings> out = (*model)->EmbedIds(rows, {.max_batch_tokens = 200});
    REQUIRE(out.ok());
    REQUIRE(out->size() == static_cast<int64_t>(rows.size()));
    REQUIRE(out->dimension() == reference->dimension);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& c = reference->cases[i];
      INFO("case " << i << ": prompt '" << c.prompt << "', text '" << c.text << "'");
      CHECK(Cosine((*out)[i], c.ids_embedding) >= 0.99999);
      CHECK(std::abs(Norm((*out)[i]) - Norm(c.ids_embedding)) <= 1e-5 * Norm(c.ids_embedding));
    }
  }
}

}  // namespace
}  // namespace modelpool
