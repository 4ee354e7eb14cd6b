#ifndef MODELPOOL_TESTS_TEXT_REFERENCE_CHECK_H_
#define MODELPOOL_TESTS_TEXT_REFERENCE_CHECK_H_

// Compares a tokenizer with the reference ids of one entry of a fixture, case by case.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "modelpool/text/tokenizer.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool::testing {

// Checks every group of `corpus` ("hard", "random", "bench") in the three modes the fixture
// scripts write, the 1 MiB text, and the decodes of the hard texts.
inline void CheckAgainstReference(const Tokenizer& tokenizer, const nlohmann::json& corpus,
                                  const nlohmann::json& expected) {
  const int max_length = corpus.at("max_length").get<int>();
  struct Mode {
    const char* name;
    EncodeOptions options;
  };
  const Mode modes[] = {
      {"special", {.max_length = 0, .truncation = false, .add_special_tokens = true}},
      {"plain", {.max_length = 0, .truncation = false, .add_special_tokens = false}},
      {"truncated", {.max_length = max_length, .truncation = true, .add_special_tokens = true}},
  };
  for (const char* group : {"hard", "random", "bench"}) {
    const auto texts = corpus.at(group).get<std::vector<std::string>>();
    for (const Mode& mode : modes) {
      if (!expected.at(group).contains(mode.name)) continue;
      const nlohmann::json& rows = expected.at(group).at(mode.name);
      REQUIRE(rows.size() == texts.size());
      int failures = 0;
      for (size_t i = 0; i < texts.size(); ++i) {
        const std::vector<int32_t> actual = tokenizer.Encode(texts[i], mode.options);
        std::string diff;
        if (rows[i].size() == 2 && rows[i][1].is_string()) {  // [count, fnv1a64]
          if (rows[i][0].get<size_t>() != actual.size() || rows[i][1] != Fnv1a64(actual)) {
            diff = "count/hash differ: got " + std::to_string(actual.size()) + " ids";
          }
        } else {
          diff = IdsDiff(rows[i].get<std::vector<int32_t>>(), actual);
        }
        if (!diff.empty() && ++failures <= 5) {
          FAIL_CHECK(group << "[" << i << "] " << mode.name << " text=" << nlohmann::json(texts[i])
                           << "\n"
                           << diff);
        }
      }
      INFO(group << " " << mode.name << ": " << failures << " of " << texts.size() << " differ");
      CHECK(failures == 0);
    }
  }
  const std::string mib = MibText(corpus);
  const std::vector<int32_t> ids = tokenizer.Encode(mib, modes[0].options);
  const nlohmann::json& summary = expected.at("mib");
  CHECK(ids.size() == summary.at("count").get<size_t>());
  CHECK(Fnv1a64(ids) == summary.at("fnv1a64").get<std::string>());
  const auto first = summary.at("first").get<std::vector<int32_t>>();
  const auto last = summary.at("last").get<std::vector<int32_t>>();
  CHECK(IdsDiff(first, std::vector<int32_t>(
                           ids.begin(), ids.begin() + std::min(ids.size(), first.size()))) == "");
  CHECK(IdsDiff(last, std::vector<int32_t>(ids.end() - std::min(ids.size(), last.size()),
                                           ids.end())) == "");

  const auto hard = corpus.at("hard").get<std::vector<std::string>>();
  for (const auto& [key, skip] : {std::pair{"decoded", true}, {"decoded_with_special", false}}) {
    const auto decoded = expected.at(key).get<std::vector<std::string>>();
    int failures = 0;
    for (size_t i = 0; i < hard.size(); ++i) {
      const std::string actual =
          tokenizer.Decode(tokenizer.Encode(hard[i], modes[0].options), skip);
      if (actual != decoded[i] && ++failures <= 5) {
        FAIL_CHECK(key << " hard[" << i << "] text=" << nlohmann::json(hard[i]) << "\n  expected "
                       << nlohmann::json(decoded[i]) << "\n  actual   " << nlohmann::json(actual));
      }
    }
    CHECK(failures == 0);
  }
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TEXT_REFERENCE_CHECK_H_
