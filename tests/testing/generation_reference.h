#ifndef MODELPOOL_TESTS_TESTING_GENERATION_REFERENCE_H_
#define MODELPOOL_TESTS_TESTING_GENERATION_REFERENCE_H_

// Reading what tools/make_t5_fixtures.py and tools/make_bart_fixtures.py record: generate()'s
// keyword arguments as GenerationOptions, its output rows as Generate() returns them, tensors.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ATen/ATen.h"
#include "modelpool/models/summarization_model.h"
#include "nlohmann/json.hpp"

namespace modelpool::testing {

// Sets MODELPOOL_DECODER_STEPS (eager, static or graph) while it lives: the decoder steps
// of generation (Note [Decoder steps in a CUDA graph]). Not thread-safe, as setenv is not.
class DecoderStepsForTest {
 public:
  explicit DecoderStepsForTest(const std::string& steps) {
    setenv("MODELPOOL_DECODER_STEPS", steps.c_str(), /*overwrite=*/1);
  }
  ~DecoderStepsForTest() { unsetenv("MODELPOOL_DECODER_STEPS"); }
  DecoderStepsForTest(const DecoderStepsForTest&) = delete;
  DecoderStepsForTest& operator=(const DecoderStepsForTest&) = delete;
};

// generate()'s keyword arguments (or a case's options) as GenerationOptions.
inline GenerationOptions OptionsOf(const nlohmann::json& o) {
  GenerationOptions options;
  if (o.contains("max_new_tokens")) options.max_new_tokens = o["max_new_tokens"].get<int>();
  if (o.contains("min_new_tokens")) options.min_new_tokens = o["min_new_tokens"].get<int>();
  if (o.contains("num_beams")) options.num_beams = o["num_beams"].get<int>();
  if (o.contains("length_penalty")) options.length_penalty = o["length_penalty"].get<double>();
  if (o.contains("no_repeat_ngram_size")) {
    options.no_repeat_ngram_size = o["no_repeat_ngram_size"].get<int>();
  }
  if (o.contains("early_stopping")) {
    const nlohmann::json& e = o["early_stopping"];
    options.early_stopping = e.is_string()   ? EarlyStopping::kNever
                             : e.get<bool>() ? EarlyStopping::kWhenBeamsDone
                                             : EarlyStopping::kHeuristic;
  }
  return options;
}

// transformers' output row as Generate() returns it: without the decoder start token, cut
// after the first end-of-sequence id (what follows is padding).
inline std::vector<int32_t> Generated(const std::vector<int32_t>& sequence, int32_t eos) {
  std::vector<int32_t> ids(sequence.begin() + 1, sequence.end());
  const auto end = std::find(ids.begin(), ids.end(), eos);
  if (end != ids.end()) ids.erase(end + 1, ids.end());
  return ids;
}

// A float32 tensor of nested JSON arrays.
inline at::Tensor FloatTensor(const nlohmann::json& values) {
  if (values.at(0).is_array()) {
    std::vector<at::Tensor> rows;
    for (const nlohmann::json& row : values) rows.push_back(FloatTensor(row));
    return at::stack(rows);
  }
  return at::tensor(values.get<std::vector<float>>());
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_GENERATION_REFERENCE_H_
