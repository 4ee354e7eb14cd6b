#include "benchmarks/parity_reference.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool::bench {
namespace {

using testing::Mentions;

constexpr char kGood[] = R"({"eos_token_id": 1, "inputs": [[5, 6, 1], [7, 1]],
  "cases": [{"name": "greedy", "options": {"max_new_tokens": 4},
             "sequences": [[0, 9, 1, 0], [0, 8, 8, 1]]},
            {"name": "beams", "options": {"max_new_tokens": 4, "num_beams": 2,
             "no_repeat_ngram_size": 3, "length_penalty": 0.5},
             "sequences": [[0, 9, 1], [0, 1]]}]})";

TEST_CASE("ParseParityReference reads what tools/t5_reference_ids.py writes") {
  absl::StatusOr<ParityReference> reference = ParseParityReference(kGood, "ref.json");
  REQUIRE(reference.ok());
  CHECK(reference->inputs == TokenRows{{5, 6, 1}, {7, 1}});
  REQUIRE(reference->cases.size() == 2);
  CHECK(reference->cases[0].name == "greedy");
  CHECK(reference->cases[0].max_new_tokens == 4);
  CHECK(reference->cases[0].num_beams == 1);
  CHECK(reference->cases[1].num_beams == 2);
  CHECK(reference->cases[1].no_repeat_ngram_size == 3);
  CHECK(reference->cases[1].length_penalty == 0.5);
  CHECK(reference->cases[1].sequences == TokenRows{{0, 9, 1}, {0, 1}});
}

TEST_CASE("A malformed or empty reference is an error naming what is wrong, not an abort") {
  // generate_parity used to throw out of nlohmann's at() and get() on each of these.
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"", "ref.json is not valid JSON"},
           {"[]", "ref.json is an array of 0, expected a JSON object"},
           {"{}", "ref.json: no inputs"},
           {R"({"inputs": []})", "ref.json: inputs is empty"},
           {R"({"inputs": [[]], "cases": []})", "ref.json: inputs[0] is empty"},
           {R"({"inputs": [[1]]})", "ref.json: no cases"},
           {R"({"inputs": [[1]], "cases": [{}]})", "ref.json: cases[0]: has no name"},
           {R"({"inputs": [[1]], "cases": [{"name": "x"}]})", "cases[0] (x): has no options"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {}}]})",
            "cases[0] (x): options have no max_new_tokens"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {"max_new_tokens": 1e9}}]})",
            "cases[0] (x): max_new_tokens is 1000000000.0, expected an integer"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {"max_new_tokens": 2,
               "num_beams": 18446744073709551615}, "sequences": [[0]]}]})",
            "num_beams is 18446744073709551615"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {"max_new_tokens": 2}}]})",
            "cases[0] (x): has no sequences"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {"max_new_tokens": 2},
               "sequences": [[0], [0]]}]})",
            "cases[0] (x): has 2 sequences for 1 inputs"},
           {R"({"inputs": [[1]], "cases": [{"name": "x", "options": {"max_new_tokens": 2},
               "sequences": [[]]}]})",
            "cases[0] (x): sequences[0] is empty"},
           {R"({"inputs": [[1.5]]})", "ref.json: inputs: element [0][0] is 1.5"}}) {
    INFO(text);
    absl::StatusOr<ParityReference> reference = ParseParityReference(text, "ref.json");
    CHECK(reference.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(reference.status(), expected));
  }
}

TEST_CASE("ReadParityReference names a missing or empty file") {
  const std::filesystem::path dir = testing::TempDir("parity_reference_test");
  absl::StatusOr<ParityReference> missing = ReadParityReference((dir / "none.json").string());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  std::ofstream(dir / "empty.json");
  absl::StatusOr<ParityReference> empty = ReadParityReference((dir / "empty.json").string());
  CHECK(empty.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(empty.status(), (dir / "empty.json").string() + " is not valid JSON"));
}

}  // namespace
}  // namespace modelpool::bench
