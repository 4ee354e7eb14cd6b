// T5 against transformers: the folders and ids that tools/make_t5_fixtures.py recorded.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "lib/models/t5/t5_folder.h"
#include "nlohmann/json.hpp"
#include "tests/testing/generation_reference.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using Json = nlohmann::json;
using Rows = std::vector<std::vector<int32_t>>;
using testing::FloatTensor;
using testing::Generated;
using testing::OptionsOf;

const std::string kDataDir = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data";

Json ReadFixture(const std::string& name) {
  const std::string path = kDataDir + "/t5/" + name;
  std::ifstream in(path);
  if (!in) FAIL(path << " is missing: run tools/make_t5_fixtures.py (see its docstring)");
  return Json::parse(in);
}

std::unique_ptr<EncoderDecoderSummarizer> LoadFixtureModel(const std::string& name, int64_t batch) {
  auto folder = T5Folder::Read(kDataDir + "/models/" + name);
  REQUIRE(folder.ok());
  SummarizerLimits limits;
  limits.max_batch_size = batch;
  limits.max_num_beams = 4;
  limits.max_input_tokens = 64;
  limits.max_new_tokens = 32;
  auto model = (*folder)->LoadSummarizer(c10::kCPU, at::kFloat, limits);
  REQUIRE(model.ok());
  return std::move(*model);
}

TEST_CASE("Generated ids equal transformers' in float32, for every recorded configuration") {
  // Eager steps, and the static steps a CUDA graph captures, run here on the CPU.
  const std::string steps = GENERATE(as<std::string>{}, "eager", "static");
  INFO("decoder steps: " << steps);
  const testing::DecoderStepsForTest use(steps);
  const Json fixture = ReadFixture("generate.json");
  for (const Json& m : fixture.at("models")) {
    const std::string name = m.at("name");
    const Rows inputs = m.at("inputs").get<Rows>();
    auto model = LoadFixtureModel(name, static_cast<int64_t>(inputs.size()));
    int ended_early = 0;
    for (const Json& c : m.at("cases")) {
      INFO(name << " / " << c.at("name").get<std::string>());
      auto ids = model->Generate(inputs, OptionsOf(c.at("options")));
      REQUIRE(ids.ok());
      const Rows expected = c.at("sequences").get<Rows>();
      REQUIRE(ids->size() == expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        INFO("input " << i);
        const std::vector<int32_t> want = Generated(expected[i], /*eos=*/1);
        CHECK((*ids)[i] == want);
        if (!want.empty() && want.back() == 1 &&
            static_cast<int>(want.size()) < c["options"]["max_new_tokens"].get<int>()) {
          ++ended_early;
        }
      }
    }
    // The fixtures are only as good as the ends they exercise.
    CHECK(ended_early > 0);
  }
}

TEST_CASE("The encoder output and the first decoder logits equal transformers' in float32") {
  const Json fixture = ReadFixture("numerics.json");
  for (const Json& m : fixture.at("models")) {
    INFO(m.at("name").get<std::string>());
    auto model = LoadFixtureModel(m.at("name"), 1);
    auto first = model->FirstStep(m.at("input_ids").get<std::vector<int32_t>>());
    REQUIRE(first.ok());
    const at::Tensor hidden = first->first[0];
    const at::Tensor logits = first->second[0];
    const at::Tensor want_hidden = FloatTensor(m.at("encoder_last_hidden_state"));
    const at::Tensor want_logits = FloatTensor(m.at("first_step_logits"));
    INFO("largest differences: hidden " << (hidden - want_hidden).abs().max().item<float>()
                                        << ", logits "
                                        << (logits - want_logits).abs().max().item<float>());
    CHECK(at::allclose(hidden, want_hidden, 1e-4, 1e-5));
    CHECK(at::allclose(logits, want_logits, 1e-4, 1e-5));
  }
}

}  // namespace
}  // namespace modelpool
