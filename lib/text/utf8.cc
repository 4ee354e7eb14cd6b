#include <cstring>

#include "lib/text/utf8_internal.h"

namespace modelpool::text_internal {
namespace {

// The length of the well-formed prefix of the sequence at `p` (Unicode table 3-7), up to
// `available` bytes: the whole sequence when valid, else its maximal subpart (at least 1).
// `*valid` says whether the sequence is complete and well-formed.
int ScanSequence(const unsigned char* p, size_t available, bool* valid) {
  const unsigned char lead = p[0];
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    *valid = false;
    return 1;
  }
  int len = 1;
  for (; len < need; ++len) {
    if (static_cast<size_t>(len) >= available) break;
    const unsigned char b = p[len];
    const bool ok = len == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
  }
  *valid = len == need;
  return len;
}

// The length of the leading run of valid UTF-8 in `text`.
size_t ValidPrefix(const unsigned char* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    // Eight ASCII bytes at a time.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    bool valid;
    const int len = ScanSequence(p + i, n - i, &valid);
    if (!valid) return i;
    i += len;
  }
  return n;
}

}  // namespace

std::string_view ValidUtf8(std::string_view text, std::string* storage) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = ValidPrefix(p, n);
  if (i == n) return text;
  storage->assign(text.data(), i);
  while (i < n) {
    const size_t run = ValidPrefix(p + i, n - i);
    storage->append(text.data() + i, run);
    i += run;
    if (i == n) break;
    bool valid;
    i += ScanSequence(p + i, n - i, &valid);
    AppendUtf8(kReplacementChar, storage);
  }
  return *storage;
}

}  // namespace modelpool::text_internal
