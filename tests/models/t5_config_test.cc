#include "lib/models/t5/t5_config.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

// A fresh folder holding `config` as config.json and, when not empty, `generation` as
// generation_config.json.
std::string Folder(const std::string& name, const std::string& config,
                   const std::string& generation = "") {
  const fs::path dir = testing::TempDir("t5_config_test_" + name);
  std::ofstream(dir / "config.json") << config;
  if (!generation.empty()) std::ofstream(dir / "generation_config.json") << generation;
  return dir.string();
}

const std::string kSizes =
    R"("vocab_size": 100, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_heads": 4, "num_layers": 2)";

std::string Config(const std::string& extra) { return "{" + kSizes + extra + "}"; }

TEST_CASE("t5-small's config parses as a relu T5 with tied embeddings") {
  auto files = ReadT5Files(std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/t5/t5-small");
  REQUIRE(files.ok());
  const T5Config& c = files->config;
  CHECK(c.vocab_size == 32128);
  CHECK(c.d_model == 512);
  CHECK(c.d_kv == 64);
  CHECK(c.d_ff == 2048);
  CHECK(c.num_heads == 8);
  CHECK(c.num_layers == 6);
  CHECK(c.num_decoder_layers == 6);
  CHECK(c.relative_attention_num_buckets == 32);
  CHECK(c.relative_attention_max_distance == 128);
  CHECK(c.activation == T5Activation::kRelu);
  CHECK_FALSE(c.gated);
  CHECK(c.tie_word_embeddings);
  CHECK(c.scale_decoder_outputs);
  CHECK(c.layer_norm_epsilon == Approx(1e-6));
  CHECK(c.decoder_start_token_id == 0);
  CHECK(c.pad_token_id == 0);
  CHECK(c.eos_token_ids == std::vector<int64_t>{1});
  // Its generation_config.json sets token ids only; task_specific_params are not defaults.
  CHECK_FALSE(files->generation.num_beams.has_value());
  CHECK_FALSE(files->generation.max_length.has_value());
  CHECK_FALSE(files->generation.no_repeat_ngram_size.has_value());
}

TEST_CASE("Without generation_config.json, config.json's generation keys are the defaults") {
  auto files = ReadT5Files(Folder("legacy", Config(R"(, "num_beams": 3, "max_length": 40,
      "min_length": 5, "no_repeat_ngram_size": 2, "early_stopping": true, "length_penalty": 0.5,
      "forced_eos_token_id": [1, 7])")));
  REQUIRE(files.ok());
  const GenerationDefaults& g = files->generation;
  CHECK(g.num_beams == 3);
  CHECK(g.max_length == 40);
  CHECK(g.min_length == 5);
  CHECK(g.no_repeat_ngram_size == 2);
  CHECK(g.early_stopping == EarlyStopping::kWhenBeamsDone);
  CHECK(g.length_penalty == 0.5);
  CHECK(g.forced_eos_token_ids == std::vector<int64_t>{1, 7});
  CHECK_FALSE(g.forced_bos_token_id.has_value());

  // A generation_config.json of its own replaces them; one made from config.json does not.
  auto own = ReadT5Files(Folder("own", Config(R"(, "num_beams": 3)"), R"({"max_length": 9})"));
  REQUIRE(own.ok());
  CHECK_FALSE(own->generation.num_beams.has_value());
  CHECK(own->generation.max_length == 9);
  auto derived = ReadT5Files(Folder("derived", Config(R"(, "num_beams": 3)"),
                                    R"({"_from_model_config": true, "max_length": 9})"));
  REQUIRE(derived.ok());
  CHECK(derived->generation.num_beams == 3);
  CHECK(derived->generation.max_length == 9);
}

TEST_CASE("The summarization prefix comes from task_specific_params") {
  auto t5_small = ReadT5Files(std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/t5/t5-small");
  REQUIRE(t5_small.ok());
  CHECK(t5_small->generation.prefix == "summarize: ");
  auto none = ReadT5Files(Folder("no_prefix", Config("")));
  REQUIRE(none.ok());
  CHECK_FALSE(none->generation.prefix.has_value());
  auto bad = ReadT5Files(Folder(
      "bad_prefix", Config(R"(, "task_specific_params": {"summarization": {"prefix": 3}})")));
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()),
             Catch::Contains("task_specific_params.summarization.prefix"));
}

TEST_CASE("gated-gelu is the tanh approximation with two input projections, as flan-t5 has") {
  auto files = ReadT5Files(
      Folder("gated", Config(R"(, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
                         "num_decoder_layers": 3)")));
  REQUIRE(files.ok());
  CHECK(files->config.gated);
  CHECK(files->config.activation == T5Activation::kGeluTanh);
  CHECK_FALSE(files->config.tie_word_embeddings);
  CHECK_FALSE(files->config.scale_decoder_outputs);  // as transformers 4 decided it
  CHECK(files->config.num_decoder_layers == 3);
}

TEST_CASE("scale_decoder_outputs, as transformers 5 writes it, overrides the tied default") {
  auto files = ReadT5Files(
      Folder("v5", Config(R"(, "tie_word_embeddings": true, "scale_decoder_outputs": false)")));
  REQUIRE(files.ok());
  CHECK(files->config.tie_word_embeddings);
  CHECK_FALSE(files->config.scale_decoder_outputs);
}

TEST_CASE("generation_config.json sets generation defaults and overrides token ids") {
  auto files =
      ReadT5Files(Folder("generation", Config(R"(, "eos_token_id": 1)"),
                         R"({"decoder_start_token_id": 3, "eos_token_id": [1, 7], "pad_token_id": 2,
          "num_beams": 4, "max_length": 200, "min_new_tokens": 5, "length_penalty": 2.0,
          "early_stopping": "never", "no_repeat_ngram_size": 3})"));
  REQUIRE(files.ok());
  CHECK(files->config.decoder_start_token_id == 3);
  CHECK(files->config.eos_token_ids == std::vector<int64_t>{1, 7});
  CHECK(files->config.pad_token_id == 2);
  const GenerationDefaults& g = files->generation;
  CHECK(g.num_beams == 4);
  CHECK(g.max_length == 200);
  CHECK(g.min_new_tokens == 5);
  CHECK(g.length_penalty == 2.0);
  CHECK(g.early_stopping == EarlyStopping::kNever);
  CHECK(g.no_repeat_ngram_size == 3);

  auto boolean = ReadT5Files(Folder("early_true", Config(""), R"({"early_stopping": true})"));
  REQUIRE(boolean.ok());
  CHECK(boolean->generation.early_stopping == EarlyStopping::kWhenBeamsDone);
}

TEST_CASE("Malformed configs are errors naming the file and the key") {
  struct Case {
    const char* what;
    std::string config;
    std::string generation;
    absl::StatusCode code;
    const char* expect;
  };
  const Case cases[] = {
      {"not t5", Config(R"(, "model_type": "bart")"), "", absl::StatusCode::kInvalidArgument,
       "model_type \"bart\""},
      {"activation", Config(R"(, "feed_forward_proj": "gated-tanh")"), "",
       absl::StatusCode::kInvalidArgument, "feed_forward_proj"},
      {"projection", Config(R"(, "feed_forward_proj": "double-relu")"), "",
       absl::StatusCode::kInvalidArgument, "feed_forward_proj"},
      {"size", R"({"vocab_size": 100, "d_model": 0, "d_kv": 8, "d_ff": 64, "num_heads": 4,
                   "num_layers": 2})",
       "", absl::StatusCode::kInvalidArgument, "d_model is 0"},
      {"eos type", Config(R"(, "eos_token_id": "x")"), "", absl::StatusCode::kInvalidArgument,
       "eos_token_id"},
      {"eos range", Config(R"(, "eos_token_id": 100)"), "", absl::StatusCode::kInvalidArgument,
       "eos_token_id 100 is outside the vocabulary"},
      {"early stopping", Config(""), R"({"early_stopping": "sometimes"})",
       absl::StatusCode::kInvalidArgument, "early_stopping"},
      {"beams", Config(R"(, "num_beams": 0)"), "", absl::StatusCode::kInvalidArgument,
       "num_beams is 0, expected >= 1"},
      {"penalty", Config(""), R"({"length_penalty": "high"})", absl::StatusCode::kInvalidArgument,
       "length_penalty"},
      {"forced bos", Config(R"(, "forced_bos_token_id": 100)"), "",
       absl::StatusCode::kInvalidArgument, "forced_bos_token_id 100 is outside the vocabulary"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string dir = Folder("bad", c.config, c.generation);
    auto files = ReadT5Files(dir);
    REQUIRE_FALSE(files.ok());
    CHECK(files.status().code() == c.code);
    CHECK_THAT(std::string(files.status().message()), Catch::Contains(c.expect));
    CHECK_THAT(std::string(files.status().message()), Catch::Contains(dir));
  }
}

TEST_CASE("Absent keys take the defaults of transformers' T5Config") {
  auto files = ReadT5Files(Folder("defaults", R"({"model_type": "t5"})"));
  REQUIRE(files.ok());
  const T5Config& c = files->config;
  CHECK(c.vocab_size == 32128);
  CHECK(c.d_model == 512);
  CHECK(c.d_kv == 64);
  CHECK(c.d_ff == 2048);
  CHECK(c.num_heads == 8);
  CHECK(c.num_layers == 6);
  CHECK(c.num_decoder_layers == 6);
  CHECK(c.activation == T5Activation::kRelu);
  CHECK(c.tie_word_embeddings);
  CHECK(c.eos_token_ids == std::vector<int64_t>{1});
}

TEST_CASE("A folder without config.json is NotFound") {
  const fs::path dir = testing::TempDir("t5_config_test_empty");
  auto files = ReadT5Files(dir.string());
  REQUIRE_FALSE(files.ok());
  CHECK(files.status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelpool
