#ifndef MODELPOOL_LIB_TEXT_UNICODE_CLASSES_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_UNICODE_CLASSES_INTERNAL_H_

#include <cstddef>
#include <string_view>

namespace modelpool::text_internal {

// The character classes the Hugging Face `tokenizers` library uses outside BERT's own tables,
// from utf8proc's Unicode data.

// Unicode's White_Space property: Rust's `char::is_whitespace`, and `\s` in its regexes.
bool IsWhiteSpace(char32_t c);
// General category L (`\p{L}`).
bool IsLetter(char32_t c);
// General category N (`\p{N}`).
bool IsNumber(char32_t c);
// `\w` of Rust's regex crate: Alphabetic, marks, decimal digits, connector punctuation and
// the join controls. Alphabetic is read as the letters, Nl and Other_Alphabetic's marks and
// enclosed letters.
bool IsWordChar(char32_t c);

// The last character of valid UTF-8 `text` (not empty), and where it starts.
char32_t LastChar(std::string_view text, size_t* start);
// The first character of valid UTF-8 `text` (not empty).
char32_t FirstChar(std::string_view text);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_UNICODE_CLASSES_INTERNAL_H_
