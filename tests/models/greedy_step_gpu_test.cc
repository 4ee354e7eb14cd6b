// The greedy step's kernels (Note [Greedy step in two kernels]) against generation.cc's tensor
// operations: the same ids through whole generations, and the choices argmax makes in the
// cases that are easy to get wrong. Built only where the CUDA kernels are.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ATen/ATen.h"
#include "lib/models/generation/generation.h"
#include "lib/models/generation/greedy_step_on_device.h"
#include "torch/cuda.h"

// After libtorch: glog defines CHECK too.
#include "catch2/catch.hpp"

namespace modelpool {
namespace {

constexpr int64_t kEos = 2;

bool HaveCuda() {
  if (torch::cuda::is_available()) return true;
  WARN("no CUDA device: nothing to compare");
  return false;
}

// Scores that the same tokens always get: random per position (seeded), a strong pull from
// each row's last token to the next of a cycle of 7 ids, so that trigrams repeat and the
// no-repeat rule bites, ties of the best score in some rows, and the end-of-sequence id on top
// for row r at position 4 + r (and for row 0 at position 1, before the minimum length).
class CyclingDecoder : public StepDecoder {
 public:
  explicit CyclingDecoder(int64_t vocab) : vocab_(vocab) {}

  at::Tensor Step(const at::Tensor& tokens, int64_t position) override {
    const at::Tensor last = tokens.to(at::kCPU);
    const int64_t rows = last.size(0);
    at::Generator generator = at::detail::createCPUGenerator(1000 + position);
    at::Tensor scores = at::randn({rows, vocab_}, generator, at::kFloat);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t next = 3 + (last[r].item<int64_t>() + 1) % 7;
      scores[r][next] += 8.0;
      if ((r + position) % 3 == 0) {  // a tie above everything: argmax takes the lower id
        scores[r][vocab_ - 1] = 50.0;
        scores[r][vocab_ / 2] = 50.0;
      }
      if (position == 4 + r || (r == 0 && position == 1)) scores[r][kEos] = 100.0;
    }
    return scores.to(at::kCUDA);
  }
  void Reorder(const at::Tensor& parents, int64_t length) override {}

 private:
  int64_t vocab_;
};

SearchOptions Options(int64_t max_new_tokens) {
  SearchOptions o;
  o.max_new_tokens = max_new_tokens;
  o.min_new_tokens = 3;
  o.no_repeat_ngram_size = 3;
  o.eos_token_ids = {kEos, 12};
  o.pad_token_id = 1;
  o.decoder_start_token_id = 0;
  o.forced_bos_token_id = 5;
  o.forced_eos_token_ids = {9, kEos};
  o.steps_per_done_check = 1;
  return o;
}

TEST_CASE("Greedy steps on the device give the ids of the tensor operations") {
  if (!HaveCuda()) return;
  int mixed_lengths = 0;  // runs whose texts end at different lengths
  for (const int64_t vocab : {50265, 3000, 17}) {
    for (const int64_t rows : {1, 5, 40}) {
      for (const int64_t ngram : {0, 2, 3}) {
        INFO("vocab " << vocab << ", " << rows << " rows, no-repeat n-grams of " << ngram);
        SearchOptions o = Options(24);
        o.no_repeat_ngram_size = ngram;
        CyclingDecoder decoder(vocab);
        o.greedy_on_device = false;
        const auto expected = GenerateIds(decoder, rows, o, at::kCUDA);
        o.greedy_on_device = true;
        const auto got = GenerateIds(decoder, rows, o, at::kCUDA);
        CHECK(got == expected);
        CHECK(expected.front().front() == 5);  // forced
        if (expected.front().size() != expected.back().size()) ++mixed_lengths;
      }
    }
  }
  CHECK(mixed_lengths >= 12);  // not a trivial comparison: of the 18 runs of several texts
}

TEST_CASE("A greedy step on the device bans, forces and breaks ties as argmax does") {
  if (!HaveCuda()) return;
  const at::TensorOptions longs = at::TensorOptions().dtype(at::kLong).device(at::kCUDA);
  const float inf = std::numeric_limits<float>::infinity();
  SearchOptions o = Options(8);
  GreedyState state;
  // Row 0 repeats (4, 6): 6 after 4 is banned. Row 1 has ended.
  state.sequences =
      at::tensor({0L, 4L, 6L, 4L, 0L, 0L, 0L, 0L, 0L, 0L, 0L, 0L}, longs).view({2, 6});
  state.lengths = at::tensor({3L, 1L}, longs);
  state.unfinished = at::tensor({1L, 0L}, longs).to(at::kBool);
  const at::Tensor eos = at::tensor(o.eos_token_ids, longs);
  const auto step = [&](std::vector<float> row0, const at::Tensor& forced = at::Tensor()) {
    const int64_t vocab = static_cast<int64_t>(row0.size());
    std::vector<float> both = row0;
    both.insert(both.end(), row0.begin(), row0.end());
    at::Tensor scores = at::tensor(both, at::kFloat).view({2, vocab}).to(at::kCUDA);
    o.no_repeat_ngram_size = 2;
    REQUIRE(GreedyStepOnDevice(scores, state, 4, eos, forced, o));
    return state.sequences.to(at::kCPU);
  };

  SECTION("the banned id is passed over; a finished row gets padding and keeps its length") {
    const at::Tensor s = step({0, 1, 2, 0, 0, 0, 9, 0, 3, 0});
    CHECK(s[0][4].item<int64_t>() == 8);  // 6 banned
    CHECK(s[1][4].item<int64_t>() == 1);
    CHECK(state.lengths.to(at::kCPU)[0].item<int64_t>() == 4);
    CHECK(state.lengths.to(at::kCPU)[1].item<int64_t>() == 1);
    CHECK(state.unfinished.to(at::kCPU)[0].item<bool>());
  }
  SECTION("equal scores give the lowest id; the end-of-sequence id ends the row") {
    const at::Tensor s = step({0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 5});
    CHECK(s[0][4].item<int64_t>() == 12);
    CHECK_FALSE(state.unfinished.to(at::kCPU)[0].item<bool>());
  }
  SECTION("NaN is above every number; -0 equals +0; every score -inf gives id 0") {
    CHECK(step({0, inf, 0, std::nanf(""), 0, 0, 0, 0, 0, 0})[0][4].item<int64_t>() == 3);
    CHECK(step({-1, -0.f, 0.f, -1})[0][4].item<int64_t>() == 1);
    CHECK(step({-inf, -inf, -inf, -inf})[0][4].item<int64_t>() == 0);
  }
  SECTION("forced ids alone may come, the lowest first, whatever the scores") {
    const at::Tensor forced = at::tensor({9L, 8L}, longs);
    CHECK(step({0, 0, 0, 0, 0, 0, 0, 0, -inf, 99}, forced)[0][4].item<int64_t>() == 8);
  }
  SECTION("the kernels' scratch is zero again after a step") {
    step({0, 1, 2, 0, 0, 0, 9, 0, 3, 0});
    CHECK(state.keys.to(at::kCPU).abs().sum().item<int64_t>() == 0);
  }
}

}  // namespace
}  // namespace modelpool
