#ifndef MODELPOOL_LIB_TEXT_TOKENIZER_JSON_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_TOKENIZER_JSON_INTERNAL_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/text/added_tokens_internal.h"

namespace modelpool::text_internal {

// The sections of a Hugging Face `tokenizer.json` that every tokenizer model shares. Parsers
// throw `nlohmann::json::exception` for values of the wrong type; callers turn it into an
// `InvalidArgument` naming the file.

using Json = nlohmann::json;

absl::Status InvalidFile(const std::string& file, const std::string& what);

// `"type"` of a section, "" for null, "?" for anything without a string type.
std::string TypeOf(const Json& section);

// The file parsed as a JSON object; `NotFound` or `InvalidArgument` naming it otherwise.
absl::StatusOr<Json> ReadJsonObject(const std::string& file);

// `added_tokens`: a list of {id, content, lstrip, rstrip, normalized, special, single_word}.
absl::Status ParseAddedTokens(const std::string& file, const Json& section,
                              std::vector<AddedToken>* added);

// The ids of the special tokens that a single sequence gets before and after it, from a
// `TemplateProcessing`, `BertProcessing` or `RobertaProcessing` post-processor, or a
// `Sequence` of those and `ByteLevel` (which adds none).
absl::Status ParsePostProcessor(const std::string& file, const Json& section,
                                std::vector<int32_t>* before, std::vector<int32_t>* after);

// The value of `key` in `object` if it is a string, else `fallback` (also for null).
std::string StringOr(const Json& object, const char* key, const std::string& fallback);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_TOKENIZER_JSON_INTERNAL_H_
