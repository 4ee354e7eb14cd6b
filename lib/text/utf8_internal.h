#ifndef MODELPOOL_LIB_TEXT_UTF8_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_UTF8_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace modelpool::text_internal {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Note [Invalid UTF-8 becomes U+FFFD]
// Tokenizers take bytes, but their references take Python strings, made from bytes with
// `bytes.decode("utf-8", errors="replace")`. CPython replaces each *maximal subpart* of an
// ill-formed sequence (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal Subparts") with
// one U+FFFD: the longest prefix of a well-formed sequence, or else one byte. So "\xE1\x80A"
// gives "\uFFFDA" and "\xE0\x80" gives "\uFFFD\uFFFD". Surrogates (ED A0..BF) and overlong
// forms (C0, C1, E0 80..9F, F0 80..8F) are ill-formed. Every tokenizer first makes its input
// valid this way, and only then normalizes it.

// Returns `text` itself when it is valid UTF-8; otherwise the replaced text, kept in `*storage`.
std::string_view ValidUtf8(std::string_view text, std::string* storage);

// The length of the valid UTF-8 character that starts with `lead`.
inline int Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Decodes the character at `p` of valid UTF-8; returns its length in bytes.
inline int DecodeUtf8(const char* p, char32_t* c) {
  const auto b = [p](int i) { return static_cast<unsigned char>(p[i]); };
  if (b(0) < 0x80) {
    *c = b(0);
    return 1;
  }
  if (b(0) < 0xE0) {
    *c = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (b(0) < 0xF0) {
    *c = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    return 3;
  }
  *c = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  return 4;
}

inline void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// The number of characters in valid UTF-8.
inline int64_t CountUtf8Chars(std::string_view text) {
  int64_t n = 0;
  for (const char ch : text) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_UTF8_INTERNAL_H_
