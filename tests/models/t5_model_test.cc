#include "lib/models/t5/t5_model.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "c10/core/InferenceMode.h"
#include "lib/models/t5/t5_folder.h"
#include "tests/testing/tiny_t5.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include "tests/testing/summarizer_checks.h"

namespace modelpool {
namespace {

using testing::Rows;
using testing::TinyT5;
using testing::WriteTinyT5;

SummarizerLimits SmallLimits() { return testing::SmallSummarizerLimits(); }

std::unique_ptr<EncoderDecoderSummarizer> LoadModel(
    const std::string& dir, const SummarizerLimits& limits = SmallLimits()) {
  return testing::LoadCpuSummarizer(T5Folder::Read, dir, limits);
}

const Rows kInputs = {{5, 9, 13, 22, 7, 1}, {30, 1}, {11, 12, 13, 14, 15, 16, 17, 18, 19, 1}};

TEST_CASE("A text generates the same ids alone as padded in a batch") {
  testing::CheckAloneAsInBatch(*LoadModel(WriteTinyT5("t5_batch", TinyT5{})), kInputs);
}

TEST_CASE("More texts than the batch limit are generated in batches, in input order") {
  auto model = LoadModel(WriteTinyT5("t5_many", TinyT5{}));
  Rows many;
  for (int i = 0; i < 9; ++i) many.push_back({static_cast<int32_t>(5 + i), 7, 1});
  GenerationOptions options;
  options.max_new_tokens = 6;
  options.num_beams = 2;
  auto all = model->Generate(many, options);
  REQUIRE(all.ok());
  REQUIRE(all->size() == many.size());
  for (size_t i = 0; i < many.size(); ++i) {
    auto one = model->Generate(Rows{many[i]}, options);
    REQUIRE(one.ok());
    CHECK((*one)[0] == (*all)[i]);
  }
}

TEST_CASE("Gated, untied and renamed-embedding checkpoints load and generate") {
  TinyT5 gated;
  gated.gated = true;
  gated.tied = false;
  auto model = LoadModel(WriteTinyT5("t5_gated", gated));
  auto ids = model->Generate(kInputs);
  REQUIRE(ids.ok());
  CHECK(ids->size() == kInputs.size());

  // save_pretrained may keep the tied embedding under the encoder's or decoder's name.
  TinyT5 renamed;
  renamed.rename = {{"shared.weight", "decoder.embed_tokens.weight"}};
  auto original = LoadModel(WriteTinyT5("t5_shared", TinyT5{}))->Generate(kInputs);
  auto moved = LoadModel(WriteTinyT5("t5_renamed", renamed))->Generate(kInputs);
  REQUIRE(original.ok());
  REQUIRE(moved.ok());
  CHECK(*original == *moved);
}

TEST_CASE("Missing or misshapen weights are errors naming the tensor") {
  TinyT5 missing;
  missing.drop = {"decoder.block.1.layer.1.EncDecAttention.k.weight"};
  auto folder = T5Folder::Read(WriteTinyT5("t5_missing", missing));
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(folder.status().message()),
             Catch::Contains("decoder.block.1.layer.1.EncDecAttention.k.weight"));

  TinyT5 misshapen;
  misshapen.reshape = {{"encoder.block.0.layer.1.DenseReluDense.wo.weight", {16, 25}}};
  folder = T5Folder::Read(WriteTinyT5("t5_misshapen", misshapen));
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(
      std::string(folder.status().message()),
      Catch::Contains("encoder.block.0.layer.1.DenseReluDense.wo.weight has shape [16, 25]"));

  TinyT5 untied;
  untied.tied = false;
  untied.drop = {"lm_head.weight"};
  folder = T5Folder::Read(WriteTinyT5("t5_no_head", untied));
  REQUIRE_FALSE(folder.ok());
  CHECK_THAT(std::string(folder.status().message()), Catch::Contains("lm_head.weight"));
  CHECK_THAT(std::string(folder.status().message()), Catch::Contains("tie_word_embeddings"));
}

TEST_CASE("Requests beyond the instance's limits or the vocabulary are InvalidArgument") {
  auto model = LoadModel(WriteTinyT5("t5_limits", TinyT5{}));
  auto code = [&](const Rows& rows, const GenerationOptions& options) {
    return model->Generate(rows, options).status().code();
  };
  const GenerationOptions defaults;
  GenerationOptions beams;
  beams.num_beams = 4;
  GenerationOptions long_output;
  long_output.max_new_tokens = 25;
  GenerationOptions negative;
  negative.min_new_tokens = -1;
  CHECK(code({{}}, defaults) == absl::StatusCode::kInvalidArgument);
  CHECK(code({std::vector<int32_t>(17, 5)}, defaults) == absl::StatusCode::kInvalidArgument);
  CHECK(code({{5, 48}}, defaults) == absl::StatusCode::kInvalidArgument);
  CHECK(code({{5, -1}}, defaults) == absl::StatusCode::kInvalidArgument);
  CHECK(code(kInputs, beams) == absl::StatusCode::kInvalidArgument);
  CHECK(code(kInputs, long_output) == absl::StatusCode::kInvalidArgument);
  CHECK(code(kInputs, negative) == absl::StatusCode::kInvalidArgument);
  CHECK(model->Generate(Rows{}, defaults).ok());
}

TEST_CASE("Defaults come from generation_config.json, then transformers' defaults") {
  SummarizerLimits limits = SmallLimits();
  limits.max_new_tokens = 32;
  const std::string dir = WriteTinyT5("t5_defaults", TinyT5{});
  auto plain = LoadModel(dir, limits)->Resolve({});
  REQUIRE(plain.ok());
  CHECK(plain->max_new_tokens == 20);
  CHECK(plain->num_beams == 1);
  CHECK(plain->length_penalty == 1.0);
  CHECK(plain->early_stopping == EarlyStopping::kHeuristic);

  std::ofstream(dir + "/generation_config.json")
      << R"({"max_length": 9, "min_length": 3, "num_beams": 2, "early_stopping": true,
            "no_repeat_ngram_size": 2, "length_penalty": 0.5})";
  auto configured = LoadModel(dir, limits);
  auto from_file = configured->Resolve({});
  REQUIRE(from_file.ok());
  CHECK(from_file->max_new_tokens == 8);  // max_length counts the decoder start token
  CHECK(from_file->min_new_tokens == 2);
  CHECK(from_file->num_beams == 2);
  CHECK(from_file->early_stopping == EarlyStopping::kWhenBeamsDone);
  CHECK(from_file->no_repeat_ngram_size == 2);
  CHECK(from_file->length_penalty == 0.5);
  GenerationOptions explicit_options;
  explicit_options.max_new_tokens = 30;
  explicit_options.num_beams = 1;
  auto overridden = configured->Resolve(explicit_options);
  REQUIRE(overridden.ok());
  CHECK(overridden->max_new_tokens == 30);
  CHECK(overridden->num_beams == 1);
}

TEST_CASE("A reordered cache continues the rows it was reordered from") {
  const std::string dir = WriteTinyT5("t5_reorder", TinyT5{});
  auto folder = T5Folder::Read(dir);
  REQUIRE(folder.ok());
  c10::InferenceMode inference;
  auto load = [&] {
    auto weights = (*folder)->LoadWeights(c10::kCPU, at::kFloat);
    REQUIRE(weights.ok());
    return std::make_unique<T5Model>((*folder)->files().config, *weights, c10::kCPU, at::kFloat,
                                     SmallLimits());
  };
  // T5's decoder starts from <pad> (0).
  testing::CheckReorderContinuesRows(*load(), *load(), {5, 9, 13, 1}, /*start_token=*/0);
}

TEST_CASE("A bfloat16 instance generates on the CPU too") {
  auto folder = T5Folder::Read(WriteTinyT5("t5_bf16", TinyT5{}));
  REQUIRE(folder.ok());
  auto bf16 = (*folder)->LoadSummarizer(c10::kCPU, at::kBFloat16, SmallLimits());
  REQUIRE(bf16.ok());
  auto ids = (*bf16)->Generate(kInputs);
  REQUIRE(ids.ok());
  CHECK(ids->size() == kInputs.size());
}

}  // namespace
}  // namespace modelpool
