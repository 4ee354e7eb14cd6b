#ifndef MODELPOOL_LIB_TEXT_BERT_NORMALIZER_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_BERT_NORMALIZER_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace modelpool::text_internal {

// Note [Unicode versions of the BERT reference]
// The Hugging Face `tokenizers` BERT normalizer and pre-tokenizer take character categories
// from the `unicode_categories` crate (Unicode 8.0 tables) and NFD from
// `unicode-normalization-alignments` (Unicode 9.0), while lowercasing and whitespace come from
// Rust's standard library (Unicode 17 in tokenizers 0.23). We match that: categories from
// generated Unicode 8.0 tables (bert_unicode_tables.inc), NFD from utf8proc but only for
// characters assigned in 9.0 (decompositions and combining classes of assigned characters never
// change), lowercase from utf8proc (Unicode 15) plus the mappings Unicode 16 and 17 added.
// tests/text/bert_normalizer_test.cc compares every code point with the reference.

// Bits of a character's class.
enum BertCharClass : uint8_t {
  kBertUnassigned = 1,      // not assigned in Unicode 9.0: no decomposition, combining class 0
  kBertNonspacingMark = 2,  // Mn in 8.0: removed by strip_accents
  kBertPunctuation = 4,     // P* in 8.0, or ASCII punctuation: split off by the pre-tokenizer
  kBertControl = 8,         // Cc, Cf or Co in 8.0 except \t \n \r: removed by clean_text
  kBertWhitespace = 16,     // White_Space: becomes ' ' in clean_text, splits words
  kBertChinese = 32,        // CJK ideograph ranges that handle_chinese_chars surrounds by spaces
};

// The class bits of `c` (0 to 0x10FFFF).
uint8_t BertCharClassOf(char32_t c);

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

// Appends to `*out` the valid UTF-8 `text` normalized as the Hugging Face `BertNormalizer`
// does: clean_text, then handle_chinese_chars, then strip_accents (NFD and removing Mn), then
// lowercase (full mapping: "İ" becomes "i̇").
void BertNormalize(std::string_view text, const BertNormalizerOptions& options, std::string* out);

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_BERT_NORMALIZER_INTERNAL_H_
