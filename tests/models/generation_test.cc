#include "lib/models/generation/generation.h"

#include <cmath>
#include <map>
#include <vector>

#include "ATen/ATen.h"
#include "lib/models/generation/static_steps.h"
#include "tests/testing/generation_reference.h"

// Last: libtorch's glog defines CHECK too, and Catch's must win.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

using Ids = std::vector<int32_t>;
using Probabilities = std::map<int64_t, std::vector<double>>;

constexpr int64_t kVocab = 5;  // 0: decoder start and padding, 1: end of sequence

// A decoder whose next-token distribution depends only on the row's last token: logits are
// log(probability), so log_softmax leaves them as they are. Row-specific tables for the first
// step let the texts of a batch part ways.
class MarkovDecoder : public StepDecoder {
 public:
  explicit MarkovDecoder(Probabilities after, Probabilities first_by_row = {})
      : after_(std::move(after)), first_by_row_(std::move(first_by_row)) {}

  at::Tensor Step(const at::Tensor& tokens, int64_t position) override {
    const int64_t rows = tokens.size(0);
    at::Tensor logits = at::empty({rows, kVocab}, at::kFloat);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t last = tokens[r].item<int64_t>();
      const auto row_table = first_by_row_.find(r);
      const std::vector<double>& p =
          position == 0 && row_table != first_by_row_.end() ? row_table->second : after_.at(last);
      for (int64_t v = 0; v < kVocab; ++v) logits[r][v] = std::log(p[v]);
    }
    return logits;
  }
  void Reorder(const at::Tensor& parents, int64_t length) override { ++reorders; }
  bool CanStepAt(int64_t positions) const override { return positions <= static_positions; }
  at::Tensor StepAt(const at::Tensor& tokens, const at::Tensor& position) override {
    ++static_steps;
    return Step(tokens, position.item<int64_t>());
  }

  int reorders = 0;
  int64_t static_positions = 0;  // none: CanStepAt is false
  int static_steps = 0;

 private:
  Probabilities after_;
  Probabilities first_by_row_;
};

SearchOptions Options(int64_t max_new_tokens) {
  SearchOptions o;
  o.max_new_tokens = max_new_tokens;
  o.eos_token_ids = {1};
  o.pad_token_id = 0;
  o.decoder_start_token_id = 0;
  o.steps_per_done_check = 1;
  return o;
}

// Greedy: 2, 3, end. Token 4 repeats itself, or ends.
const Probabilities kGreedyTable = {
    {0, {1e-9, 0.006, 0.66, 0.24, 0.09}}, {2, {1e-9, 0.012, 0.09, 0.65, 0.24}},
    {3, {1e-9, 0.65, 0.24, 0.03, 0.09}},  {4, {1e-9, 0.35, 0.21, 0.08, 0.58}},
    {1, {0.2, 0.2, 0.2, 0.2, 0.2}},  // what finished texts are fed
};

TEST_CASE("Greedy search takes the most likely token until the end-of-sequence token") {
  MarkovDecoder decoder(kGreedyTable);
  const auto ids = GenerateIds(decoder, 1, Options(10), c10::kCPU);
  CHECK(ids == std::vector<Ids>{{2, 3, 1}});
  CHECK(decoder.reorders == 0);
}

TEST_CASE("Greedy search stops a finished text while the others go on to the maximum") {
  // Row 0 starts with 3 (then ends), row 1 with 4 (which repeats).
  MarkovDecoder decoder(kGreedyTable,
                        {{0, {1e-9, 0.01, 0.01, 0.97, 0.01}}, {1, {1e-9, 0.01, 0.01, 0.01, 0.97}}});
  const auto ids = GenerateIds(decoder, 2, Options(5), c10::kCPU);
  CHECK(ids == std::vector<Ids>{{3, 1}, {4, 4, 4, 4, 4}});
}

TEST_CASE("min_new_tokens forbids the end before that many tokens") {
  MarkovDecoder decoder(kGreedyTable);
  SearchOptions o = Options(10);
  o.min_new_tokens = 4;
  CHECK(GenerateIds(decoder, 1, o, c10::kCPU) == std::vector<Ids>{{2, 3, 2, 3, 1}});
}

TEST_CASE("no_repeat_ngram_size bans a token that would repeat an n-gram") {
  MarkovDecoder decoder(kGreedyTable);
  SearchOptions o = Options(10);
  o.min_new_tokens = 4;
  o.no_repeat_ngram_size = 2;
  // 0 2 3 2: the bigram (2, 3) was seen, so 4 follows 2; then (4, 4) once, then the end.
  CHECK(GenerateIds(decoder, 1, o, c10::kCPU) == std::vector<Ids>{{2, 3, 2, 4, 4, 1}});
}

TEST_CASE("max_new_tokens cuts a text that does not end") {
  MarkovDecoder decoder(kGreedyTable, {{0, {1e-9, 0.01, 0.01, 0.01, 0.97}}});
  CHECK(GenerateIds(decoder, 1, Options(3), c10::kCPU) == std::vector<Ids>{{4, 4, 4}});
}

// Beam search worked by hand (2 beams, keep 4 candidates a step):
//   step 1: 2 (-0.693), 3 (-0.916), end (-2.81, not among the first two: not finished), 4.
//   step 2: "3 end" -1.021 finishes (score -1.021 / 2); "2 2" -1.743 and "2 3" -1.897 run.
//   step 3: "2 3 end" -2.002 finishes (score -2.002 / 3); both slots are finished.
// With length_penalty 1 the shorter "3 end" (-0.511) beats "2 3 end" (-0.667); with 2, the
// longer one (-2.002 / 9 = -0.222 against -1.021 / 4 = -0.255) wins.
const Probabilities kBeamTable = {
    {0, {1e-9, 0.06, 0.5, 0.4, 0.04}},  {2, {1e-9, 0.1, 0.35, 0.3, 0.25}},
    {3, {1e-9, 0.9, 0.05, 0.03, 0.02}}, {4, {1e-9, 0.5, 0.2, 0.2, 0.1}},
    {1, {0.2, 0.2, 0.2, 0.2, 0.2}},
};

TEST_CASE("Beam search finds a likelier text than greedy search") {
  MarkovDecoder greedy_decoder(kBeamTable);
  CHECK(GenerateIds(greedy_decoder, 1, Options(4), c10::kCPU) == std::vector<Ids>{{2, 2, 2, 2}});

  for (EarlyStopping stop :
       {EarlyStopping::kHeuristic, EarlyStopping::kWhenBeamsDone, EarlyStopping::kNever}) {
    MarkovDecoder decoder(kBeamTable);
    SearchOptions o = Options(6);
    o.num_beams = 2;
    o.early_stopping = stop;
    CHECK(GenerateIds(decoder, 1, o, c10::kCPU) == std::vector<Ids>{{3, 1}});
    CHECK(decoder.reorders > 0);
  }
}

TEST_CASE("length_penalty above 1 favours the longer finished hypothesis") {
  MarkovDecoder decoder(kBeamTable);
  SearchOptions o = Options(6);
  o.num_beams = 2;
  o.length_penalty = 2.0;
  o.early_stopping = EarlyStopping::kWhenBeamsDone;
  CHECK(GenerateIds(decoder, 1, o, c10::kCPU) == std::vector<Ids>{{2, 3, 1}});
}

TEST_CASE("Beam search returns a text for every row of a batch") {
  MarkovDecoder decoder(kBeamTable);
  SearchOptions o = Options(6);
  o.num_beams = 2;
  const auto ids = GenerateIds(decoder, 3, o, c10::kCPU);
  CHECK(ids == std::vector<Ids>(3, Ids{3, 1}));
}

TEST_CASE("Beam search without an end runs to max_new_tokens") {
  MarkovDecoder decoder({{0, {1e-9, 1e-9, 0.5, 0.3, 0.2}},
                         {2, {1e-9, 1e-9, 0.2, 0.3, 0.5}},
                         {3, {1e-9, 1e-9, 0.3, 0.3, 0.4}},
                         {4, {1e-9, 1e-9, 0.4, 0.4, 0.2}}});
  SearchOptions o = Options(4);
  o.num_beams = 2;
  const auto ids = GenerateIds(decoder, 1, o, c10::kCPU);
  REQUIRE(ids.size() == 1);
  CHECK(ids[0].size() == 4);
}

TEST_CASE("A forced first token and a forced last token override the model's choice") {
  for (int64_t beams : {1, 2}) {
    INFO("beams " << beams);
    MarkovDecoder decoder(kGreedyTable);
    SearchOptions options = Options(4);
    options.num_beams = beams;
    options.forced_bos_token_id = 4;  // the table prefers 2
    const auto started = GenerateIds(decoder, 1, options, c10::kCPU);
    REQUIRE_FALSE(started[0].empty());
    CHECK(started[0].front() == 4);

    // Token 4 mostly repeats itself: without the forced end, four 4s.
    options.min_new_tokens = 4;
    options.forced_eos_token_ids = {1};
    const auto ended = GenerateIds(decoder, 1, options, c10::kCPU);
    CHECK(ended == std::vector<Ids>{{4, 4, 4, 1}});
  }
}

TEST_CASE("Static steps are chosen where asked and possible, and give the eager steps' ids") {
  MarkovDecoder decoder(kGreedyTable);
  CHECK(*ChooseDecoderSteps(decoder, c10::kCPU, 8) == DecoderSteps::kEager);  // the CPU's default
  {
    const testing::DecoderStepsForTest use("static");
    CHECK(*ChooseDecoderSteps(decoder, c10::kCPU, 8) == DecoderSteps::kEager);  // cannot
    decoder.static_positions = 8;
    CHECK(*ChooseDecoderSteps(decoder, c10::kCPU, 8) == DecoderSteps::kStatic);
    CHECK(*ChooseDecoderSteps(decoder, c10::kCPU, 9) == DecoderSteps::kEager);  // too many
  }
  {
    const testing::DecoderStepsForTest use("graph");  // no graphs on the CPU
    CHECK(*ChooseDecoderSteps(decoder, c10::kCPU, 8) == DecoderSteps::kStatic);
  }
  {
    const testing::DecoderStepsForTest use(std::string(1000, 'x'));  // neither: an error
    const absl::StatusOr<DecoderSteps> refused = ChooseDecoderSteps(decoder, c10::kCPU, 8);
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(
        std::string(refused.status().message()),
        Catch::Contains("MODELPOOL_DECODER_STEPS") && Catch::Contains("eager, static or graph"));
    CHECK(refused.status().message().size() < 200);
  }
  for (int64_t beams : {1, 2}) {
    INFO("beams " << beams);
    SearchOptions options = Options(8);
    options.num_beams = beams;
    const auto eager = GenerateIds(decoder, 2, options, c10::kCPU);
    StaticSteps steps(decoder, 2 * beams, c10::kCPU, /*graph=*/false);
    decoder.static_steps = 0;
    const auto from_static = GenerateIds(steps, 2, options, c10::kCPU);
    CHECK(from_static == eager);
    CHECK(decoder.static_steps > 0);
  }
}

}  // namespace
}  // namespace modelpool
