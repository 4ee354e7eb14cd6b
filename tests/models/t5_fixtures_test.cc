// T5 against transformers: the folders and ids that tools/make_t5_fixtures.py recorded.
#include <fstream>
#include <memory>
#include <string>

#include "ATen/ATen.h"
#include "lib/models/t5/t5_folder.h"
#include "nlohmann/json.hpp"
#include "tests/testing/generation_reference.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include "tests/testing/summarizer_checks.h"

namespace modelpool {
namespace {

using Json = nlohmann::json;

const std::string kDataDir = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data";
constexpr int32_t kEos = 1;

Json ReadFixture(const std::string& name) {
  const std::string path = kDataDir + "/t5/" + name;
  std::ifstream in(path);
  if (!in) FAIL(path << " is missing: run tools/make_t5_fixtures.py (see its docstring)");
  return Json::parse(in);
}

std::unique_ptr<EncoderDecoderSummarizer> LoadFixtureModel(const std::string& name, int64_t batch) {
  return testing::LoadCpuSummarizer(T5Folder::Read, kDataDir + "/models/" + name,
                                    testing::FixtureLimits(batch));
}

TEST_CASE("Generated ids equal transformers' in float32, for every recorded configuration") {
  // Eager steps, and the static steps a CUDA graph captures, run here on the CPU.
  const std::string steps = GENERATE(as<std::string>{}, "eager", "static");
  INFO("decoder steps: " << steps);
  const testing::DecoderStepsForTest use(steps);
  testing::CheckRecordedIds(ReadFixture("generate.json"), LoadFixtureModel, kEos);
}

TEST_CASE("The encoder output and the first decoder logits equal transformers' in float32") {
  testing::CheckRecordedNumerics(ReadFixture("numerics.json"), LoadFixtureModel,
                                 /*logits_atol=*/1e-5);
}

}  // namespace
}  // namespace modelpool
