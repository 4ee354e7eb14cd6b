#ifndef MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_
#define MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_

// What every summarizer architecture must do, checked the same way for each: include it last,
// after libtorch (whose glog defines CHECK too).

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "c10/core/InferenceMode.h"
#include "lib/models/generation/encoder_decoder.h"
#include "lib/models/generation/encoder_decoder_summarizer.h"
#include "lib/models/summarizer_folder.h"
#include "nlohmann/json.hpp"
#include "tests/testing/generation_reference.h"

namespace modelpool::testing {

using Rows = std::vector<std::vector<int32_t>>;

// Limits small enough for tiny models on the CPU.
inline SummarizerLimits SmallSummarizerLimits() {
  SummarizerLimits limits;
  limits.max_batch_size = 4;
  limits.max_num_beams = 3;
  limits.max_input_tokens = 16;
  limits.max_new_tokens = 24;
  return limits;
}

// What the fixtures' folders are loaded with: `batch` texts of up to 64 tokens, 4 beams, 32 new
// tokens.
inline SummarizerLimits FixtureLimits(int64_t batch) {
  SummarizerLimits limits;
  limits.max_batch_size = batch;
  limits.max_num_beams = 4;
  limits.max_input_tokens = 64;
  limits.max_new_tokens = 32;
  return limits;
}

// A float32 summarizer on the CPU from the folder `read` returns (BartFolder::Read, ...).
template <typename ReadFolder>
std::unique_ptr<EncoderDecoderSummarizer> LoadCpuSummarizer(
    ReadFolder read, const std::string& dir,
    const SummarizerLimits& limits = SmallSummarizerLimits()) {
  auto folder = read(dir, /*name=*/"");
  REQUIRE(folder.ok());
  auto model = (*folder)->LoadSummarizer(c10::kCPU, at::kFloat, limits);
  REQUIRE(model.ok());
  return std::move(*model);
}

// Each of `inputs` generates the same ids alone as in one padded batch, greedy and with beams,
// at most 10 of them and at least one.
inline void CheckAloneAsInBatch(EncoderDecoderSummarizer& model, const Rows& inputs) {
  for (int beams : {1, 3}) {
    INFO("beams " << beams);
    GenerationOptions options;
    options.num_beams = beams;
    options.max_new_tokens = 10;
    auto together = model.Generate(inputs, options);
    REQUIRE(together.ok());
    REQUIRE(together->size() == inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto alone = model.Generate(Rows{inputs[i]}, options);
      REQUIRE(alone.ok());
      CHECK((*alone)[0] == (*together)[i]);
      CHECK_FALSE((*together)[i].empty());
      CHECK((*together)[i].size() <= 10);
    }
  }
}

// Two instances of one model decode `input_ids` (one text, 4 tokens) with 2 beams from
// `start_token`; the second gets the first's rows swapped at step 1. After `a` reorders its
// cache with the swap, both must give the same logits at step 2.
inline void CheckReorderContinuesRows(EncoderDecoder& a, EncoderDecoder& b,
                                      const std::vector<int64_t>& input_ids, int64_t start_token) {
  c10::InferenceMode inference;
  const at::Tensor ids = at::tensor(input_ids).unsqueeze(0);
  const at::Tensor mask = at::ones({1, ids.size(1)}, at::kBool);
  for (EncoderDecoder* model : {&a, &b}) {
    model->StartDecoding(model->Encode(ids, mask), mask, /*num_beams=*/2);
    model->Step(at::full({2}, start_token, at::kLong), 0);
  }
  a.Step(at::tensor(std::vector<int64_t>{7, 20}), 1);
  b.Step(at::tensor(std::vector<int64_t>{20, 7}), 1);
  a.Reorder(at::tensor(std::vector<int64_t>{1, 0}), 2);
  const at::Tensor next = at::tensor(std::vector<int64_t>{3, 4});
  CHECK(at::allclose(a.Step(next, 2), b.Step(next, 2), 1e-5, 1e-6));
}

// What a tools/make_*_fixtures.py script recorded in generate.json: for every model and case,
// the ids `load(name, batch)`'s summarizer generates equal transformers' (ended by `eos`), and
// some of them end before their length limit (the fixtures are only as good as the ends they
// exercise).
template <typename Load>
void CheckRecordedIds(const nlohmann::json& fixture, Load load, int32_t eos) {
  REQUIRE_FALSE(fixture.at("models").empty());
  for (const nlohmann::json& m : fixture.at("models")) {
    const std::string name = m.at("name");
    const Rows inputs = m.at("inputs").get<Rows>();
    std::unique_ptr<EncoderDecoderSummarizer> model =
        load(name, static_cast<int64_t>(inputs.size()));
    int ended_early = 0;
    for (const nlohmann::json& c : m.at("cases")) {
      INFO(name << " / " << c.at("name").get<std::string>());
      const GenerationOptions options = OptionsOf(c.at("options"));
      auto resolved = model->Resolve(options);
      REQUIRE(resolved.ok());
      auto ids = model->Generate(inputs, options);
      REQUIRE(ids.ok());
      const Rows expected = c.at("sequences").get<Rows>();
      REQUIRE(ids->size() == expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        INFO("input " << i);
        const std::vector<int32_t> want = Generated(expected[i], eos);
        CHECK((*ids)[i] == want);
        if (!want.empty() && want.back() == eos &&
            static_cast<int64_t>(want.size()) < resolved->max_new_tokens) {
          ++ended_early;
        }
      }
    }
    CHECK(ended_early > 0);
  }
}

// What numerics.json recorded: every model's encoder output and first decoder logits for its
// input equal transformers' in float32 (relative 1e-4; absolute 1e-5, and `logits_atol` for
// the logits).
template <typename Load>
void CheckRecordedNumerics(const nlohmann::json& fixture, Load load, double logits_atol) {
  for (const nlohmann::json& m : fixture.at("models")) {
    INFO(m.at("name").get<std::string>());
    std::unique_ptr<EncoderDecoderSummarizer> model = load(m.at("name").get<std::string>(), 1);
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
    CHECK(at::allclose(logits, want_logits, 1e-4, logits_atol));
  }
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_
