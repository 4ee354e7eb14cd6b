#ifndef MODELPOOL_LIB_TEXT_BYTE_LEVEL_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_BYTE_LEVEL_INTERNAL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/text/unicode_classes_internal.h"
#include "lib/text/utf8_internal.h"

namespace modelpool::text_internal {

// GPT-2's byte-level alphabet: byte `b` is written as the character `ByteLevelChar(b)`, the
// printable bytes as themselves and the others as U+0100 onwards, so that every byte string
// is a printable string (`bytes_to_unicode` in GPT-2's encoder.py).
const std::array<std::string, 256>& ByteLevelChars();
// The byte that character `c` stands for, or -1 when it is not in the alphabet.
int ByteOfLevelChar(char32_t c);

// Note [The GPT-2 pre-tokenizer by hand]
// The ByteLevel pre-tokenizer splits text with the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Every character is a letter (L), a number (N), White_Space (\s) or other, so some
// alternative always matches and the matches tile the text. At a position, in the order the
// alternatives are tried: an ASCII apostrophe followed by s, t, m, d, re, ve or ll is a
// contraction; else a run of letters, numbers or others, with one U+0020 before it when the
// position holds one followed by such a run; else whitespace: a run that reaches the end of
// the text is one piece, a longer run before a non-space leaves its last character to the
// next piece (which then starts with it), and a single one is a piece of its own.
enum class CharKind : uint8_t { kLetter, kNumber, kSpace, kOther };

inline CharKind KindOf(char32_t c) {
  if (IsWhiteSpace(c)) return CharKind::kSpace;
  if (IsLetter(c)) return CharKind::kLetter;
  if (IsNumber(c)) return CharKind::kNumber;
  return CharKind::kOther;
}

// Calls `emit(piece)` for each piece of valid UTF-8 `text`, in order.
template <typename Emit>
void SplitGpt2(std::string_view text, const Emit& emit) {
  const size_t n = text.size();
  const auto kind_at = [&](size_t i, size_t* len) {
    char32_t c;
    *len = DecodeUtf8(text.data() + i, &c);
    return KindOf(c);
  };
  // The end of the run of characters of `kind` that starts at `i`.
  const auto run_end = [&](size_t i, CharKind kind) {
    while (i < n) {
      size_t len;
      if (kind_at(i, &len) != kind) break;
      i += len;
    }
    return i;
  };
  size_t pos = 0;
  while (pos < n) {
    if (text[pos] == '\'' && pos + 1 < n) {
      const char a = text[pos + 1];
      const char b = pos + 2 < n ? text[pos + 2] : '\0';
      size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        len = 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        len = 3;
      }
      if (len > 0) {
        emit(text.substr(pos, len));
        pos += len;
        continue;
      }
    }
    size_t len;
    CharKind kind = kind_at(pos, &len);
    size_t start = pos;
    if (text[pos] == ' ' && pos + 1 < n) {
      size_t next_len;
      const CharKind next = kind_at(pos + 1, &next_len);
      if (next != CharKind::kSpace) {
        const size_t end = run_end(pos + 1, next);
        emit(text.substr(pos, end - pos));
        pos = end;
        continue;
      }
    }
    if (kind != CharKind::kSpace) {
      const size_t end = run_end(pos, kind);
      emit(text.substr(start, end - start));
      pos = end;
      continue;
    }
    const size_t end = run_end(pos, CharKind::kSpace);
    size_t stop = end;
    if (end < n && end - pos > len) {
      // Leave the last whitespace character to the next piece.
      size_t last;
      LastChar(text.substr(0, end), &last);
      stop = last;
    }
    emit(text.substr(pos, stop - pos));
    pos = stop;
  }
}

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_BYTE_LEVEL_INTERNAL_H_
