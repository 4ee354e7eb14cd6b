#ifndef MODELPOOL_TESTS_TESTING_BERT_REFERENCE_H_
#define MODELPOOL_TESTS_TESTING_BERT_REFERENCE_H_

// sentence-transformers' outputs for the tiny BERT-family folders, as
// tools/make_bert_fixtures.py writes them to tests/data/bert/<model>.json (and
// tools/make_roberta_fixtures.py to tests/data/roberta/<model>.json).

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"

namespace modelpool::testing {

struct BertReferenceCase {
  std::string text;
  std::string prompt;              // empty: none
  std::vector<int32_t> input_ids;  // of prompt + text, cut at max_seq_length
  bool truncated = false;
  std::vector<float> embedding;      // encode(text, prompt=prompt)
  std::vector<float> ids_embedding;  // the model on input_ids alone
};

struct BertReference {
  std::string model_dir;
  int64_t dimension = 0;
  int64_t max_seq_length = 0;
  std::vector<BertReferenceCase> cases;
};

// The fixture of tests/data/`family`/`name`.json under `source_dir`.
inline absl::StatusOr<BertReference> ReadBertReference(const std::string& source_dir,
                                                       const std::string& name,
                                                       const std::string& family = "bert") {
  const std::string path = absl::StrCat(source_dir, "/tests/data/", family, "/", name, ".json");
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, "; tools/make_", family, "_fixtures.py makes it"));
  }
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, " is not JSON"));
  BertReference reference;
  reference.model_dir = absl::StrCat(source_dir, "/tests/data/models/", name);
  reference.dimension = json.at("dimension").get<int64_t>();
  reference.max_seq_length = json.at("max_seq_length").get<int64_t>();
  for (const nlohmann::json& c : json.at("cases")) {
    reference.cases.push_back({c.at("text").get<std::string>(), c.at("prompt").get<std::string>(),
                               c.at("input_ids").get<std::vector<int32_t>>(),
                               c.at("truncated").get<bool>(),
                               c.at("embedding").get<std::vector<float>>(),
                               c.at("ids_embedding").get<std::vector<float>>()});
  }
  return reference;
}

inline double Norm(absl::Span<const float> v) {
  double sum = 0;
  for (float x : v) sum += double{x} * x;
  return std::sqrt(sum);
}

inline double Cosine(absl::Span<const float> a, absl::Span<const float> b) {
  double dot = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) dot += double{a[i]} * b[i];
  return dot / (Norm(a) * Norm(b));
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_BERT_REFERENCE_H_
