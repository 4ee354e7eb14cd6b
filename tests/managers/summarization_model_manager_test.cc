#include "modelpool/managers/summarization_model_manager.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "modelpool/devices/fake_device_inventory.h"
#include "modelpool/text/tokenizer.h"
#include "tests/testing/tiny_bart.h"
#include "tests/testing/tiny_t5.h"
#include "torch/cuda.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

// The relu fixture of tools/make_t5_fixtures.py: a tiny random T5 with a SentencePiece model.
std::string FixtureModel() {
  return std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/models/t5-tiny-relu";
}

Settings OnCpu() {
  Settings settings;
  settings.force_cpu = true;
  settings.max_instances = 2;
  return settings;
}

SummarizationModelManager::Options CpuOptions(std::string model_dir) {
  SummarizationModelManager::Options options;
  options.model_dir = std::move(model_dir);
  options.settings = OnCpu();
  options.max_batch_size = 4;
  options.max_input_tokens = 64;
  options.max_new_tokens = 16;
  return options;
}

const std::vector<std::string> kTexts = {
    "The committee met on Tuesday and agreed to delay the vote until the budget is final.",
    "Rain.",
    "Engineers replaced the pump, tested the valves, and reopened the plant after two days.",
};

TEST_CASE("Summarize decodes what Generate makes of the prefixed, tokenized texts") {
  auto manager = SummarizationModelManager::Create(CpuOptions(FixtureModel()));
  REQUIRE(manager.ok());
  CHECK((*manager)->model_name() == "t5-tiny-relu");
  CHECK((*manager)->model_type() == "summarization");
  REQUIRE((*manager)->devices().size() == 1);
  CHECK((*manager)->devices()[0].ToString() == "cpu");

  GenerationOptions options;
  options.max_new_tokens = 12;
  options.num_beams = 2;
  auto lease = (*manager)->Acquire(absl::Seconds(30));
  REQUIRE(lease.ok());
  CHECK((*lease)->device().ToString() == "cpu");
  auto summaries = (*lease)->Summarize(kTexts, options);
  REQUIRE(summaries.ok());
  REQUIRE(summaries->size() == kTexts.size());

  auto tokenizer = LoadTokenizer(FixtureModel());
  REQUIRE(tokenizer.ok());
  EncodeOptions encode;
  encode.max_length = 64;
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const std::vector<int32_t> ids = (*tokenizer)->Encode("summarize: " + kTexts[i], encode);
    auto generated = (*lease)->Generate({ids}, options);
    REQUIRE(generated.ok());
    CHECK((*summaries)[i] == (*tokenizer)->Decode((*generated)[0]));
  }
}

TEST_CASE("A BART folder summarizes without a prefix, with the folder's defaults, in float16") {
  testing::TinyBart bart;
  bart.tokenizer = true;
  bart.max_positions = 64;  // the manager's max_input_tokens here
  bart.config_extra = {{"num_beams", 2}, {"max_length", 9}, {"forced_bos_token_id", 0}};
  SummarizationModelManager::Options options =
      CpuOptions(testing::WriteTinyBart("bart_manager", bart));
  options.dtype = DType::kFloat16;  // computes in float32 on the CPU
  auto manager = SummarizationModelManager::Create(options);
  REQUIRE(manager.ok());
  auto lease = (*manager)->Acquire(absl::Seconds(30));
  INFO(lease.status());
  REQUIRE(lease.ok());
  auto summaries = (*lease)->Summarize(kTexts);
  REQUIRE(summaries.ok());
  REQUIRE(summaries->size() == kTexts.size());

  auto tokenizer = LoadTokenizer(options.model_dir);
  REQUIRE(tokenizer.ok());
  EncodeOptions encode;
  encode.max_length = 64;
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const std::vector<int32_t> ids = (*tokenizer)->Encode(kTexts[i], encode);
    REQUIRE(ids.front() == 0);  // <s> ... </s>, no prefix
    auto generated = (*lease)->Generate({ids});
    REQUIRE(generated.ok());
    REQUIRE_FALSE((*generated)[0].empty());
    CHECK((*generated)[0].size() <= 8);   // max_length 9 counts the decoder start
    CHECK((*generated)[0].front() == 0);  // forced BOS
    CHECK((*summaries)[i] == (*tokenizer)->Decode((*generated)[0]));
  }
}

TEST_CASE("The manager's Summarize leases an instance and returns it") {
  auto manager = SummarizationModelManager::Create(CpuOptions(FixtureModel()));
  REQUIRE(manager.ok());
  GenerationOptions options;
  options.max_new_tokens = 8;
  auto summaries = (*manager)->Summarize(kTexts, options, absl::Seconds(30));
  REQUIRE(summaries.ok());
  CHECK(summaries->size() == kTexts.size());
  CHECK((*manager)->Stats().in_use == 0);
  CHECK((*manager)->Stats().created == 1);
}

TEST_CASE("Create refuses float16 and limits below one") {
  SummarizationModelManager::Options options = CpuOptions(FixtureModel());
  options.dtype = DType::kFloat16;
  auto manager = SummarizationModelManager::Create(options);
  REQUIRE_FALSE(manager.ok());
  CHECK(manager.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(manager.status().message()), Catch::Contains("float16"));

  options = CpuOptions(FixtureModel());
  options.max_new_tokens = 0;
  CHECK(SummarizationModelManager::Create(options).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Create names what is wrong with the folder") {
  auto missing = SummarizationModelManager::Create(CpuOptions("/nonexistent/t5"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("config.json"));

  testing::TinyT5 broken;
  broken.drop = {"encoder.final_layer_norm.weight"};
  auto manager = SummarizationModelManager::Create(
      CpuOptions(testing::WriteTinyT5("t5_manager_broken", broken)));
  REQUIRE_FALSE(manager.ok());
  CHECK_THAT(std::string(manager.status().message()),
             Catch::Contains("encoder.final_layer_norm.weight"));
}

TEST_CASE("GPUs that libtorch cannot use leave the manager on the cpu, or fail with force_gpu") {
  if (torch::cuda::is_available()) {
    SUCCEED("this libtorch has CUDA: nothing to fall back from");
    return;
  }
  auto inventory = std::make_shared<FakeDeviceInventory>();
  inventory->AddGpu("fake", int64_t{80} << 30, int64_t{80} << 30);
  SummarizationModelManager::Options options = CpuOptions(FixtureModel());
  options.settings = Settings{};
  options.inventory = inventory;
  auto manager = SummarizationModelManager::Create(options);
  REQUIRE(manager.ok());
  REQUIRE((*manager)->devices().size() == 1);
  CHECK((*manager)->devices()[0].ToString() == "cpu");

  Settings force_gpu;
  force_gpu.force_gpu = true;
  options.settings = force_gpu;
  auto refused = SummarizationModelManager::Create(options);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("CUDA"));
}

}  // namespace
}  // namespace modelpool
