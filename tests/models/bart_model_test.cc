#include "lib/models/bart/bart_model.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "c10/core/InferenceMode.h"
#include "lib/models/bart/bart_folder.h"
#include "lib/models/registry.h"
#include "tests/testing/tiny_bart.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include "tests/testing/summarizer_checks.h"

namespace modelpool {
namespace {

using testing::Rows;
using testing::TinyBart;
using testing::WriteTinyBart;

SummarizerLimits SmallLimits() { return testing::SmallSummarizerLimits(); }

std::unique_ptr<EncoderDecoderSummarizer> LoadModel(
    const std::string& dir, const SummarizerLimits& limits = SmallLimits()) {
  return testing::LoadCpuSummarizer(BartFolder::Read, dir, limits);
}

// <s> ... </s>, as BART's tokenizer gives them.
const Rows kInputs = {{0, 9, 13, 22, 7, 2}, {0, 30, 2}, {0, 11, 12, 13, 14, 15, 16, 17, 18, 2}};

TEST_CASE("BART: a text generates the same ids alone as padded in a batch") {
  TinyBart distil;  // distilbart's shape: a deeper encoder, an untied head
  distil.encoder_layers = 3;
  distil.decoder_layers = 1;
  distil.tied = false;
  distil.activation = "relu";
  distil.scale_embedding = true;
  for (const auto& [name, spec] : {std::pair<std::string, TinyBart>{"bart_batch", TinyBart{}},
                                   {"bart_batch_distil", distil}}) {
    INFO(name);
    testing::CheckAloneAsInBatch(*LoadModel(WriteTinyBart(name, spec)), kInputs);
  }
}

TEST_CASE("BART: the encoder output and logits have the model's shapes") {
  auto model = LoadModel(WriteTinyBart("bart_shapes", TinyBart{}));
  auto first = model->FirstStep(kInputs[0]);
  REQUIRE(first.ok());
  CHECK(first->first.sizes() == at::IntArrayRef({1, 6, 16}));
  CHECK(first->second.sizes() == at::IntArrayRef({1, 48}));
  CHECK(first->second.scalar_type() == at::kFloat);
  CHECK(at::isfinite(first->second).all().item<bool>());
}

TEST_CASE("BART: final_logits_bias is added to the logits") {
  TinyBart without;
  without.final_logits_bias = false;
  auto with_bias = LoadModel(WriteTinyBart("bart_bias", TinyBart{}))->FirstStep(kInputs[0]);
  auto no_bias = LoadModel(WriteTinyBart("bart_no_bias", without))->FirstStep(kInputs[0]);
  REQUIRE(with_bias.ok());
  REQUIRE(no_bias.ok());
  const at::Tensor bias = at::arange(48).remainder(7).to(at::kFloat) * 0.05;
  CHECK(at::allclose(with_bias->second[0] - no_bias->second[0], bias, 1e-4, 1e-5));
  CHECK(at::equal(with_bias->first, no_bias->first));
}

TEST_CASE("BART: BartModel checkpoints and renamed tied embeddings load the same model") {
  const Rows expected = *LoadModel(WriteTinyBart("bart_plain", TinyBart{}))->Generate(kInputs);
  TinyBart bare;  // BartModel's names: no "model.", no head, no bias
  bare.prefix = "";
  bare.final_logits_bias = false;
  TinyBart no_bias;
  no_bias.final_logits_bias = false;
  CHECK(*LoadModel(WriteTinyBart("bart_bare", bare))->Generate(kInputs) ==
        *LoadModel(WriteTinyBart("bart_prefixed_no_bias", no_bias))->Generate(kInputs));

  // save_pretrained may keep the tied embedding under the encoder's or the decoder's name.
  for (const char* stored :
       {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}) {
    INFO(stored);
    TinyBart renamed;
    renamed.rename = {{"model.shared.weight", stored}};
    CHECK(*LoadModel(WriteTinyBart("bart_renamed", renamed))->Generate(kInputs) == expected);
  }
}

TEST_CASE("BART: missing or misshapen weights are errors naming the tensor") {
  TinyBart missing;
  missing.drop = {"model.decoder.layers.1.encoder_attn.k_proj.bias"};
  auto folder = BartFolder::Read(WriteTinyBart("bart_missing", missing));
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(folder.status().message()),
             Catch::Contains("model.decoder.layers.1.encoder_attn.k_proj.bias"));

  TinyBart misshapen;
  misshapen.reshape = {{"model.encoder.embed_positions.weight", {40, 16}}};
  folder = BartFolder::Read(WriteTinyBart("bart_misshapen", misshapen));
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(folder.status().message()),
             Catch::Contains("model.encoder.embed_positions.weight has shape [40, 16]"));

  TinyBart headless;
  headless.tied = false;
  headless.drop = {"lm_head.weight"};
  folder = BartFolder::Read(WriteTinyBart("bart_headless", headless));
  REQUIRE_FALSE(folder.ok());
  CHECK_THAT(std::string(folder.status().message()), Catch::Contains("lm_head.weight"));
  CHECK_THAT(std::string(folder.status().message()), Catch::Contains("tie_word_embeddings"));
}

TEST_CASE("BART: bad config values are errors naming the file and the field") {
  struct Case {
    const char* what;
    nlohmann::json extra;
    std::string generation;
    const char* expect;
  };
  const Case cases[] = {
      {"heads", {{"decoder_attention_heads", 3}}, "", "decoder_attention_heads 3"},
      {"size", {{"encoder_ffn_dim", 0}}, "", "encoder_ffn_dim is 0"},
      {"activation", {{"activation_function", "tanh"}}, "", "activation_function \"tanh\""},
      {"mbart", {{"normalize_before", true}}, "", "normalize_before is true"},
      {"final norm", {{"add_final_layer_norm", true}}, "", "add_final_layer_norm"},
      {"eos", {{"eos_token_id", 48}}, "", "eos_token_id 48 is outside the vocabulary"},
      {"forced bos", {{"forced_bos_token_id", 99}}, "", "forced_bos_token_id 99"},
      {"beams", {{"num_beams", 0}}, "", "num_beams is 0"},
      {"penalty type", {}, R"({"length_penalty": "long"})", "length_penalty"},
      {"early stopping", {}, R"({"early_stopping": "sometimes"})", "early_stopping"},
      {"forced eos type", {{"forced_eos_token_id", "x"}}, "", "forced_eos_token_id"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    TinyBart spec;
    spec.config_extra = c.extra;
    spec.generation_config = c.generation;
    const std::string dir = WriteTinyBart("bart_bad_config", spec);
    auto folder = BartFolder::Read(dir);
    REQUIRE_FALSE(folder.ok());
    CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(folder.status().message()), Catch::Contains(c.expect));
    CHECK_THAT(std::string(folder.status().message()), Catch::Contains(dir));
  }
}

TEST_CASE("BART: generation defaults come from config.json without generation_config.json") {
  TinyBart cnn;  // bart-large-cnn's keys, scaled down
  cnn.config_extra = {
      {"num_beams", 3},           {"length_penalty", 2.0},     {"min_length", 6},
      {"max_length", 20},         {"no_repeat_ngram_size", 3}, {"early_stopping", true},
      {"forced_bos_token_id", 0}, {"forced_eos_token_id", 2}};
  const std::string dir = WriteTinyBart("bart_cnn_defaults", cnn);
  auto from_config = LoadModel(dir)->Resolve({});
  REQUIRE(from_config.ok());
  CHECK(from_config->num_beams == 3);
  CHECK(from_config->length_penalty == 2.0);
  CHECK(from_config->min_new_tokens == 5);   // min_length counts the decoder start token
  CHECK(from_config->max_new_tokens == 19);  // so does max_length
  CHECK(from_config->no_repeat_ngram_size == 3);
  CHECK(from_config->early_stopping == EarlyStopping::kWhenBeamsDone);
  CHECK(from_config->forced_bos_token_id == 0);
  CHECK(from_config->forced_eos_token_ids == std::vector<int64_t>{2});
  CHECK(from_config->decoder_start_token_id == 2);
  CHECK(from_config->pad_token_id == 1);

  GenerationOptions asked;
  asked.num_beams = 1;
  asked.max_new_tokens = 7;
  asked.min_new_tokens = 0;
  auto overridden = LoadModel(dir)->Resolve(asked);
  REQUIRE(overridden.ok());
  CHECK(overridden->num_beams == 1);
  CHECK(overridden->max_new_tokens == 7);
  CHECK(overridden->min_new_tokens == 0);
  CHECK(overridden->length_penalty == 2.0);

  // A generation_config.json of its own replaces config.json's keys...
  cnn.generation_config = R"({"num_beams": 2, "max_new_tokens": 9})";
  auto own = LoadModel(WriteTinyBart("bart_own_generation", cnn))->Resolve({});
  REQUIRE(own.ok());
  CHECK(own->num_beams == 2);
  CHECK(own->max_new_tokens == 9);
  CHECK(own->length_penalty == 1.0);
  CHECK_FALSE(own->forced_bos_token_id.has_value());
  // ...but one made from the model's config falls back to config.json for what it lacks.
  cnn.generation_config = R"({"_from_model_config": true, "num_beams": 2})";
  auto derived = LoadModel(WriteTinyBart("bart_derived_generation", cnn))->Resolve({});
  REQUIRE(derived.ok());
  CHECK(derived->num_beams == 2);
  CHECK(derived->length_penalty == 2.0);
  CHECK(derived->forced_bos_token_id == 0);
}

TEST_CASE("BART: forced BOS starts every text and forced EOS ends it at the length limit") {
  TinyBart forced;
  forced.config_extra = {{"forced_bos_token_id", 0}, {"forced_eos_token_id", 2}};
  auto model = LoadModel(WriteTinyBart("bart_forced", forced));
  for (int beams : {1, 3}) {
    INFO("beams " << beams);
    GenerationOptions options;
    options.num_beams = beams;
    options.max_new_tokens = 8;
    options.min_new_tokens = 8;  // end-of-sequence banned until the last step, then forced
    auto ids = model->Generate(kInputs, options);
    REQUIRE(ids.ok());
    for (const std::vector<int32_t>& row : *ids) {
      REQUIRE(row.size() == 8);
      CHECK(row.front() == 0);
      CHECK(row.back() == 2);
    }
  }
}

TEST_CASE("BART: an instance's lengths stop at the positions; requests beyond are refused") {
  auto folder = BartFolder::Read(WriteTinyBart("bart_positions", TinyBart{}));
  REQUIRE(folder.ok());
  SummarizerLimits long_limits = SmallLimits();
  long_limits.max_input_tokens = 512;  // max_position_embeddings is 40
  long_limits.max_new_tokens = 256;
  auto model = (*folder)->LoadSummarizer(c10::kCPU, at::kFloat, long_limits);
  REQUIRE(model.ok());
  CHECK((*model)->Generate({std::vector<int32_t>(40, 5)}).ok());
  auto too_long = (*model)->Generate({std::vector<int32_t>(41, 5)});
  CHECK(too_long.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(too_long.status().message()), Catch::Contains("up to 40"));
  GenerationOptions long_output;
  long_output.max_new_tokens = 41;
  CHECK((*model)->Generate({{0, 5, 2}}, long_output).status().code() ==
        absl::StatusCode::kInvalidArgument);

  // The footprint is that of the instance, whose lengths stop at the positions; absurd
  // limits saturate instead of overflowing.
  SummarizerLimits within = long_limits;
  within.max_input_tokens = 40;
  within.max_new_tokens = 40;
  CHECK((*folder)->InstanceBytes(DType::kFloat32, long_limits) ==
        (*folder)->InstanceBytes(DType::kFloat32, within));
  SummarizerLimits absurd = long_limits;
  absurd.max_batch_size = int64_t{1} << 40;
  absurd.max_num_beams = int64_t{1} << 40;
  CHECK((*folder)->InstanceBytes(DType::kFloat32, absurd) == std::numeric_limits<int64_t>::max());

  auto small = LoadModel(WriteTinyBart("bart_limits", TinyBart{}));
  GenerationOptions beams;
  beams.num_beams = 4;
  CHECK(small->Generate(kInputs, beams).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(small->Generate({{0, 48, 2}}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("BART: a reordered cache continues the rows it was reordered from") {
  auto folder = BartFolder::Read(WriteTinyBart("bart_reorder", TinyBart{}));
  REQUIRE(folder.ok());
  c10::InferenceMode inference;
  auto load = [&] {
    auto weights = (*folder)->LoadWeights(c10::kCPU, at::kFloat);
    REQUIRE(weights.ok());
    return std::make_unique<BartModel>((*folder)->files().config, *weights, c10::kCPU, at::kFloat,
                                       SmallLimits());
  };
  // BART's decoder starts from </s> (decoder_start_token_id 2).
  testing::CheckReorderContinuesRows(*load(), *load(), {0, 9, 13, 2}, /*start_token=*/2);
}

TEST_CASE("BART: instances on a device share their weights") {
  auto folder = BartFolder::Read(WriteTinyBart("bart_shared", TinyBart{}));
  REQUIRE(folder.ok());
  auto first = (*folder)->LoadWeights(c10::kCPU, at::kFloat);
  auto second = (*folder)->LoadWeights(c10::kCPU, at::kFloat);
  auto other_type = (*folder)->LoadWeights(c10::kCPU, at::kBFloat16);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  REQUIRE(other_type.ok());
  CHECK(first->get() == second->get());
  CHECK(first->get() != other_type->get());
  // Tied: one matrix for both embeddings and the head.
  CHECK((*first)->lm_head.is_same((*first)->encoder_embedding));
  CHECK((*first)->decoder_embedding.is_same((*first)->encoder_embedding));
}

TEST_CASE("BART: bfloat16 instances generate on the CPU; every compute type is accepted") {
  auto folder = BartFolder::Read(WriteTinyBart("bart_bf16", TinyBart{}));
  REQUIRE(folder.ok());
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    CHECK((*folder)->CheckDType(dtype).ok());
  }
  auto bf16 = (*folder)->LoadSummarizer(c10::kCPU, at::kBFloat16, SmallLimits());
  REQUIRE(bf16.ok());
  auto ids = (*bf16)->Generate(kInputs);
  REQUIRE(ids.ok());
  CHECK(ids->size() == kInputs.size());
  CHECK((*folder)->WeightBytes(DType::kBFloat16) * 2 == (*folder)->WeightBytes(DType::kFloat32));
  CHECK((*folder)->InstanceBytes(DType::kFloat32, SmallLimits()) > 0);
}

TEST_CASE("The registry opens BART folders and names it among the summarizers") {
  TinyBart with_tokenizer;
  with_tokenizer.tokenizer = true;
  auto folder = OpenSummarizerFolder(WriteTinyBart("bart_registry", with_tokenizer));
  REQUIRE(folder.ok());
  CHECK(dynamic_cast<const BartFolder*>(folder->get()) != nullptr);

  auto without_tokenizer = OpenSummarizerFolder(WriteTinyBart("bart_no_tokenizer", TinyBart{}));
  REQUIRE_FALSE(without_tokenizer.ok());
  CHECK(without_tokenizer.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(without_tokenizer.status().message()), Catch::Contains("tokenizer"));

  TinyBart pegasus;
  pegasus.config_extra = {{"model_type", "pegasus"}};
  auto unsupported = OpenSummarizerFolder(WriteTinyBart("bart_pegasus", pegasus));
  REQUIRE_FALSE(unsupported.ok());
  CHECK(unsupported.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(unsupported.status().message()), Catch::Contains("'pegasus'"));
  CHECK_THAT(std::string(unsupported.status().message()), Catch::Contains("bart"));
}

}  // namespace
}  // namespace modelpool
