#include "benchmarks/parity_reference.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "examples/common/input_files.h"
#include "lib/base/file.h"
#include "lib/models/formats/json_file.h"
#include "modelpool/base/status.h"

namespace modelpool::bench {
namespace {

using Json = nlohmann::json;

constexpr int kMaxCount = 1 << 16;  // tokens, beams, n-gram sizes

absl::Status Invalid(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// The member `key` of `object`, or null when absent; `object` must be an object.
const Json* Member(const Json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<std::optional<int>> Count(const Json& options, const char* key,
                                         const std::string& where, int min) {
  const Json* value = Member(options, key);
  if (value == nullptr) return std::optional<int>();
  // get<int64_t> wraps integers above int64 to negative ones, which are out of range too.
  if (!value->is_number_integer() || value->get<int64_t>() < min ||
      value->get<int64_t>() > kMaxCount) {
    return Invalid(where, absl::StrCat(key, " is ", DescribeJson(*value),
                                       ", expected an integer from ", min, " to ", kMaxCount));
  }
  return std::optional<int>(value->get<int>());
}

absl::StatusOr<ParityCase> ReadCase(const Json& json, size_t index, size_t inputs,
                                    const std::string& source) {
  std::string where = absl::StrCat(source, ": cases[", index, "]");
  if (!json.is_object()) return Invalid(where, absl::StrCat("is ", DescribeJson(json)));
  ParityCase c;
  const Json* name = Member(json, "name");
  if (name == nullptr || !name->is_string()) return Invalid(where, "has no name");
  c.name = name->get<std::string>();
  where = absl::StrCat(where, " (", c.name, ")");
  const Json* options = Member(json, "options");
  if (options == nullptr || !options->is_object()) return Invalid(where, "has no options object");
  MODELPOOL_ASSIGN_OR_RETURN(std::optional<int> max_new,
                             Count(*options, "max_new_tokens", where, 1));
  if (!max_new.has_value()) return Invalid(where, "options have no max_new_tokens");
  c.max_new_tokens = *max_new;
  MODELPOOL_ASSIGN_OR_RETURN(std::optional<int> beams, Count(*options, "num_beams", where, 1));
  c.num_beams = beams.value_or(1);
  MODELPOOL_ASSIGN_OR_RETURN(c.min_new_tokens, Count(*options, "min_new_tokens", where, 0));
  MODELPOOL_ASSIGN_OR_RETURN(c.no_repeat_ngram_size,
                             Count(*options, "no_repeat_ngram_size", where, 0));
  if (const Json* penalty = Member(*options, "length_penalty")) {
    if (!penalty->is_number()) {
      return Invalid(where, absl::StrCat("length_penalty is ", DescribeJson(*penalty)));
    }
    c.length_penalty = penalty->get<double>();
  }
  const Json* sequences = Member(json, "sequences");
  if (sequences == nullptr) return Invalid(where, "has no sequences");
  MODELPOOL_ASSIGN_OR_RETURN(c.sequences, cli::TokenIdsFromJson(*sequences, where + ": sequences"));
  if (c.sequences.size() != inputs) {
    return Invalid(where,
                   absl::StrCat("has ", c.sequences.size(), " sequences for ", inputs, " inputs"));
  }
  for (size_t i = 0; i < c.sequences.size(); ++i) {
    if (c.sequences[i].empty()) {
      return Invalid(where, absl::StrCat("sequences[", i,
                                         "] is empty (it starts with the decoder "
                                         "start token)"));
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<ParityReference> ParseParityReference(std::string_view text,
                                                     const std::string& source) {
  MODELPOOL_ASSIGN_OR_RETURN(const Json json, ParseJson(text, source));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " is ", DescribeJson(json), ", expected a JSON object"));
  }
  ParityReference reference;
  const Json* inputs = Member(json, "inputs");
  if (inputs == nullptr) return Invalid(source, "no inputs");
  MODELPOOL_ASSIGN_OR_RETURN(reference.inputs, cli::TokenIdsFromJson(*inputs, source + ": inputs"));
  if (reference.inputs.empty()) return Invalid(source, "inputs is empty");
  for (size_t i = 0; i < reference.inputs.size(); ++i) {
    if (reference.inputs[i].empty())
      return Invalid(source, absl::StrCat("inputs[", i, "] is empty"));
  }
  if (const Json* eos = Member(json, "eos_token_id")) {
    if (!eos->is_number_integer() || eos->get<int64_t>() < 0 ||
        eos->get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Invalid(source, absl::StrCat("eos_token_id is ", DescribeJson(*eos)));
    }
    reference.eos_token_id = eos->get<int32_t>();
  }
  const Json* cases = Member(json, "cases");
  if (cases == nullptr || !cases->is_array() || cases->empty()) {
    return Invalid(source, "no cases (expected a non-empty array)");
  }
  for (size_t i = 0; i < cases->size(); ++i) {
    MODELPOOL_ASSIGN_OR_RETURN(ParityCase c,
                               ReadCase((*cases)[i], i, reference.inputs.size(), source));
    reference.cases.push_back(std::move(c));
  }
  return reference;
}

absl::StatusOr<ParityReference> ReadParityReference(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, ReadRegularFile(path, int64_t{1} << 30));
  return ParseParityReference(text, path);
}

}  // namespace modelpool::bench
