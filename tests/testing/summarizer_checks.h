#ifndef MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_
#define MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_

// What every summarizer architecture must do, checked the same way for each: include it last,
// after libtorch (whose glog defines CHECK too).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "c10/core/InferenceMode.h"
#include "lib/models/generation/encoder_decoder.h"
#include "lib/models/generation/encoder_decoder_summarizer.h"
#include "lib/models/summarizer_folder.h"

#include <catch2/catch.hpp>

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

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_SUMMARIZER_CHECKS_H_
