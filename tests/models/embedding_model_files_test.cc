#include "lib/models/embedding_model_files.h"

#include <filesystem>
#include <string>

#include "lib/models/bert/bert_encoder.h"
#include "lib/models/embedding_model_state.h"
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
  const auto* bert = dynamic_cast<const BertArchitecture*>(files->encoder.get());
  REQUIRE(bert != nullptr);
  const BertConfig& config = bert->config();
  CHECK(config.vocab_size == 30522);
  CHECK(config.hidden_size == 384);
  CHECK(config.num_hidden_layers == 6);
  CHECK(config.num_attention_heads == 12);
  CHECK(config.intermediate_size == 1536);
  CHECK(config.max_position_embeddings == 512);
  CHECK(config.hidden_act == BertActivation::kGelu);
  CHECK(files->encoder->shape().max_positions == 512);
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

TEST_CASE("Weights under bert. and TensorFlow-era LayerNorm names give the same encoder") {
  const fs::path plain_dir = testing::TempDir("unprefixed");
  const fs::path prefixed_dir = testing::TempDir("prefix");
  WriteTinyBert(plain_dir, {});
  WriteTinyBert(prefixed_dir, {.prefix = "bert.", .tf_layer_norms = true});  // same weights
  auto plain = ReadEmbeddingModelFiles(plain_dir.string());
  auto prefixed = ReadEmbeddingModelFiles(prefixed_dir.string());
  REQUIRE((plain.ok() && prefixed.ok()));
  auto a = LoadEmbeddingModel(*plain, nullptr, Device::Cpu(), DType::kFloat32, 64);
  auto b = LoadEmbeddingModel(*prefixed, nullptr, Device::Cpu(), DType::kFloat32, 64);
  REQUIRE((a.ok() && b.ok()));
  const std::vector<std::vector<int32_t>> rows = {{2, 7, 8, 3}, {2, 9, 3}};
  absl::StatusOr<Embeddings> va = (*a)->EmbedIds(rows);
  absl::StatusOr<Embeddings> vb = (*b)->EmbedIds(rows);
  REQUIRE((va.ok() && vb.ok()));
  CHECK(va->tensor.equal(vb->tensor));
}

TEST_CASE("Instances on one device share the encoder's weights while any holds them") {
  const fs::path dir = testing::TempDir("shared");
  WriteTinyBert(dir, {});
  auto files = ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  auto first = (*files)->LoadEncoder(c10::kCPU, at::kFloat);
  auto second = (*files)->LoadEncoder(c10::kCPU, at::kFloat);
  auto other_type = (*files)->LoadEncoder(c10::kCPU, at::kBFloat16);
  REQUIRE((first.ok() && second.ok() && other_type.ok()));
  CHECK(first->get() == second->get());
  CHECK(first->get() != other_type->get());
  std::weak_ptr<const Encoder> released = *first;
  first = nullptr;
  second = nullptr;
  CHECK(released.expired());  // the cache does not keep the weights alive by itself
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
      {"model_type", "gpt2", "model_type 'gpt2' is not supported for embeddings (supported: bert"},
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
