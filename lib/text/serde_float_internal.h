#ifndef MODELPOOL_LIB_TEXT_SERDE_FLOAT_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_SERDE_FLOAT_INTERNAL_H_

#include <optional>
#include <string_view>
#include <vector>

namespace modelpool::text_internal {

// Note [Scores read as the tokenizers library reads them]
// The `tokenizers` library reads tokenizer.json with serde_json, whose default number parser
// is not correctly rounded: it gathers the digits into an integer, converts that to a double
// and multiplies or divides it by a power of ten, so a number of more than 15 or 16 digits
// may come out one unit in the last place away from its value. Unigram segmentations whose
// scores tie depend on those last bits, so the Unigram scores are read the same way.

// `number` (JSON number text) as serde_json's default parser reads it.
double SerdeParseDouble(std::string_view number);

// The scores of `model.vocab` ([[piece, score], ...]) in `json_text`, in order, read
// by `SerdeParseDouble`; nullopt when the JSON is malformed.
std::optional<std::vector<double>> UnigramScoresAsSerde(std::string_view json_text);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_SERDE_FLOAT_INTERNAL_H_
