// BART against transformers: the folders and ids that tools/make_bart_fixtures.py recorded.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "lib/models/bart/bart_folder.h"
#include "nlohmann/json.hpp"
#include "tests/testing/generation_reference.h"
#include "tests/testing/temp_dir.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include "tests/testing/summarizer_checks.h"

namespace modelpool {
namespace {

using Json = nlohmann::json;
using testing::Generated;
using testing::Rows;

const std::string kDataDir = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data";
constexpr int32_t kEos = 2;

Json ReadFixture(const std::string& name) {
  const std::string path = kDataDir + "/bart/" + name;
  std::ifstream in(path);
  if (!in) FAIL(path << " is missing: run tools/make_bart_fixtures.py (see its docstring)");
  return Json::parse(in);
}

std::unique_ptr<EncoderDecoderSummarizer> LoadFixtureModel(const std::string& name, int64_t batch) {
  return testing::LoadCpuSummarizer(BartFolder::Read, kDataDir + "/models/" + name,
                                    testing::FixtureLimits(batch));
}

TEST_CASE("BART ids equal transformers' in float32, for every recorded configuration") {
  // Eager steps, and the static steps a CUDA graph captures, run here on the CPU.
  const std::string steps = GENERATE(as<std::string>{}, "eager", "static");
  INFO("decoder steps: " << steps);
  const testing::DecoderStepsForTest use(steps);
  testing::CheckRecordedIds(ReadFixture("generate.json"), LoadFixtureModel, kEos);
}

// Note [Reusing decoder graphs]: an instance keeps its static steps between batches. A batch
// of a shape seen before, with other texts, must get the ids a fresh instance gives it, and so
// must shapes beyond the number kept, and a shape again after it was dropped.
TEST_CASE("Static steps kept between batches give every batch its own ids") {
  const testing::DecoderStepsForTest use("static");
  const Json fixture = ReadFixture("generate.json");
  const Json& m = fixture.at("models").at(0);
  const Rows inputs = m.at("inputs").get<Rows>();
  Rows reversed(inputs.rbegin(), inputs.rend());  // the same shape, other texts in each row
  REQUIRE(reversed != inputs);
  std::vector<Rows> batches = {inputs, reversed};
  for (size_t n = 1; n <= 5; ++n) batches.emplace_back(inputs.begin(), inputs.begin() + n);
  batches.push_back(reversed);  // its shape was dropped: five others came after it
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.num_beams = 2;  // reorders too
  options.no_repeat_ngram_size = 0;
  auto kept = LoadFixtureModel(m.at("name"), static_cast<int64_t>(inputs.size()));
  for (size_t i = 0; i < batches.size(); ++i) {
    INFO("batch " << i << " of " << batches[i].size() << " texts");
    auto fresh = LoadFixtureModel(m.at("name"), static_cast<int64_t>(inputs.size()));
    auto want = fresh->Generate(batches[i], options);
    auto got = kept->Generate(batches[i], options);
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    CHECK(*got == *want);
  }
}

TEST_CASE("BART's defaults are the folder's, as transformers ran them") {
  const Json fixture = ReadFixture("generate.json");
  for (const Json& m : fixture.at("models")) {
    INFO(m.at("name").get<std::string>());
    auto model = LoadFixtureModel(m.at("name"), 1);
    auto resolved = model->Resolve({});
    REQUIRE(resolved.ok());
    const Json& d = m.at("defaults");
    CHECK(resolved->num_beams == d.at("num_beams").get<int64_t>());
    CHECK(resolved->length_penalty == d.at("length_penalty").get<double>());
    CHECK(resolved->max_new_tokens == d.at("max_length").get<int64_t>() - 1);
    CHECK(resolved->min_new_tokens == d.at("min_length").get<int64_t>() - 1);
    CHECK(resolved->no_repeat_ngram_size == d.at("no_repeat_ngram_size").get<int64_t>());
    CHECK(resolved->forced_bos_token_id == d.at("forced_bos_token_id").get<int64_t>());
    CHECK(resolved->forced_eos_token_ids ==
          std::vector<int64_t>{d.at("forced_eos_token_id").get<int64_t>()});
  }
}

TEST_CASE("BART's encoder output and first decoder logits equal transformers' in float32") {
  testing::CheckRecordedNumerics(ReadFixture("numerics.json"), LoadFixtureModel,
                                 /*logits_atol=*/1e-4);
}

#ifdef MODELPOOL_SUMMARIZE_CLI
// `summarize --model DIR --json-in-ids ids.json --json-out out.json`, no generation flag: the
// folder's defaults, so the ids of the fixture's "defaults" case.
TEST_CASE("The summarize command uses the folder's generation defaults") {
  const Json fixture = ReadFixture("generate.json");
  const std::filesystem::path dir = testing::TempDir("bart_summarize_cli");
  for (const Json& m : fixture.at("models")) {
    const std::string name = m.at("name");
    INFO(name);
    const Json* defaults = nullptr;
    for (const Json& c : m.at("cases")) {
      if (c.at("name") == "defaults") defaults = &c;
    }
    REQUIRE(defaults != nullptr);
    const std::filesystem::path ids = dir / (name + "_ids.json");
    const std::filesystem::path out = dir / (name + "_out.json");
    std::ofstream(ids) << m.at("inputs").dump();
    const std::string command = std::string(MODELPOOL_SUMMARIZE_CLI) + " --model " + kDataDir +
                                "/models/" + name + " --json-in-ids " + ids.string() +
                                " --json-out " + out.string() + " > /dev/null 2>&1";
    setenv("MODELPOOL_FORCE_CPU", "1", /*overwrite=*/1);
    REQUIRE(std::system(command.c_str()) == 0);
    std::ifstream in(out);
    const Rows got = Json::parse(in).get<Rows>();
    const Rows expected = defaults->at("sequences").get<Rows>();
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      INFO("input " << i);
      CHECK(got[i] == Generated(expected[i], kEos));
    }
  }
}
#endif

}  // namespace
}  // namespace modelpool
