#include "lib/models/embedding_model_files.h"

#include <filesystem>
#include <string>

#include "tests/testing/tiny_bert.h"

// After libtorch's headers, whose logging (glog or c10's own) defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

namespace fs = std::filesystem;
using testing::TinyBertSpec;
using testing::WriteJson;
using testing::WriteTinyBert;

const std::string kMiniLm =
    std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/models/all-MiniLM-L6-v2";

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

// The status of reading a tiny folder written as `spec` says, after `change` edits it.
absl::Status ReadTiny(const TinyBertSpec& spec,
                      const std::function<void(const fs::path&)>& change = nullptr) {
  const fs::path dir = testing::TempDir("files");
  WriteTinyBert(dir, spec);
  if (change) change(dir);
  return ReadEmbeddingModelFiles(dir.string()).status();
}

TEST_CASE("all-MiniLM-L6-v2's files say BERT, mean pooling, Normalize and 256 tokens") {
  absl::StatusOr<EmbeddingModelFiles> files = ReadEmbeddingModelConfig(kMiniLm);
  REQUIRE(files.ok());
  CHECK(files->name == "all-MiniLM-L6-v2");
  CHECK(files->config.vocab_size == 30522);
  CHECK(files->config.hidden_size == 384);
  CHECK(files->config.num_hidden_layers == 6);
  CHECK(files->config.num_attention_heads == 12);
  CHECK(files->config.intermediate_size == 1536);
  CHECK(files->config.max_position_embeddings == 512);
  CHECK(files->config.hidden_act == BertActivation::kGelu);
  CHECK(files->pooling.mean);
  CHECK(files->pooling.num_modes() == 1);
  CHECK(files->normalize);  // a 2_Normalize module without a folder
  CHECK(files->max_seq_length == 256);
  CHECK(files->dimension() == 384);
}

TEST_CASE("A folder with configuration but no weights is NotFound naming model.safetensors") {
  const absl::Status status = ReadEmbeddingModelFiles(kMiniLm).status();
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(MessageOf(status), Catch::Contains("model.safetensors"));
}

TEST_CASE("A folder without sentence-transformers files gets mean pooling, no normalization") {
  const fs::path dir = testing::TempDir("plain");
  WriteTinyBert(dir, {.sentence_transformers = false});
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  CHECK((*files)->pooling.mean);
  CHECK_FALSE((*files)->normalize);
  CHECK((*files)->max_seq_length == 16);  // every position the encoder has

  WriteJson(dir / "tokenizer_config.json", {{"model_max_length", 10}});
  files = ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  CHECK((*files)->max_seq_length == 10);  // the tokenizer's limit
}

TEST_CASE("Weights under bert. and TensorFlow-era LayerNorm names are found") {
  const fs::path dir = testing::TempDir("prefix");
  WriteTinyBert(dir, {.prefix = "bert.", .tf_layer_norms = true});
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  CHECK((*files)->tensor_prefix == "bert.");
  CHECK((*files)->TensorName("encoder.layer.1.output.LayerNorm.bias") ==
        "bert.encoder.layer.1.output.LayerNorm.beta");
  CHECK((*files)->TensorName("encoder.layer.1.output.dense.bias") ==
        "bert.encoder.layer.1.output.dense.bias");
}

TEST_CASE("A missing tensor is NotFound naming it") {
  const absl::Status status =
      ReadTiny({.prefix = "bert.", .edit = [](std::string& name, std::vector<int64_t>&) {
                  if (name == "bert.encoder.layer.1.intermediate.dense.bias") name.clear();
                }});
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(MessageOf(status),
             Catch::Contains("no tensor 'bert.encoder.layer.1.intermediate.dense.bias'"));
}

TEST_CASE("A tensor of the wrong shape is InvalidArgument naming it and both shapes") {
  const absl::Status status = ReadTiny({.edit = [](std::string& name, std::vector<int64_t>& shape) {
    if (name == "encoder.layer.0.output.dense.weight") shape = {12, 8};
  }});
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(MessageOf(status), Catch::Contains("model.safetensors: tensor "
                                                "encoder.layer.0.output.dense.weight has shape "
                                                "[12, 8], expected [8, 12] (from config.json)"));
}

TEST_CASE("Bad or unsupported configuration values are InvalidArgument naming file and field") {
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* expect;
  };
  const Case cases[] = {
      {"hidden_act", "gelu_10", "hidden_act 'gelu_10' is not supported"},
      {"position_embedding_type", "relative_key", "position_embedding_type 'relative_key'"},
      {"model_type", "roberta", "model_type 'roberta' is not supported"},
      {"hidden_size", "large", "hidden_size is \"large\", expected an integer"},
      {"num_attention_heads", 3, "hidden_size 8 is not a multiple of num_attention_heads 3"},
      {"num_hidden_layers", 0, "num_hidden_layers is 0, expected a positive integer"},
  };
  for (const Case& c : cases) {
    INFO(c.key);
    const absl::Status status = ReadTiny({}, [&](const fs::path& dir) {
      nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
      config[c.key] = c.value;
      WriteJson(dir / "config.json", config);
    });
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(MessageOf(status), Catch::Contains("config.json") && Catch::Contains(c.expect));
  }
}

TEST_CASE("A missing config.json is NotFound naming it") {
  const absl::Status status =
      ReadTiny({}, [](const fs::path& dir) { fs::remove(dir / "config.json"); });
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(MessageOf(status), Catch::Contains("config.json"));
}

TEST_CASE("Pooling and module lists this encoder cannot run are InvalidArgument") {
  SECTION("weighted mean pooling") {
    const absl::Status status = ReadTiny({.pooling = "weightedmean_tokens"});
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(MessageOf(status), Catch::Contains("pooling_mode_weightedmean_tokens"));
  }
  SECTION("a Dense module") {
    const absl::Status status = ReadTiny({}, [](const fs::path& dir) {
      nlohmann::json modules = nlohmann::json::parse(std::ifstream(dir / "modules.json"));
      modules.push_back({{"idx", 2},
                         {"name", "2"},
                         {"path", "2_Dense"},
                         {"type", "sentence_transformers.models.Dense"}});
      WriteJson(dir / "modules.json", modules);
    });
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(MessageOf(status), Catch::Contains("sentence_transformers.models.Dense"));
  }
  SECTION("a module path outside the folder") {
    const absl::Status status = ReadTiny({}, [](const fs::path& dir) {
      nlohmann::json modules = nlohmann::json::parse(std::ifstream(dir / "modules.json"));
      modules[1]["path"] = "../elsewhere";
      WriteJson(dir / "modules.json", modules);
    });
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(MessageOf(status), Catch::Contains("leaves the folder"));
  }
}

TEST_CASE("max_seq_length beyond the encoder's positions is cut to them") {
  const fs::path dir = testing::TempDir("long");
  WriteTinyBert(dir, {.max_seq_length = 100});
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  CHECK((*files)->max_seq_length == 16);
}

}  // namespace
}  // namespace modelpool
