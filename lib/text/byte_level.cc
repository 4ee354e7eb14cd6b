#include "lib/text/byte_level_internal.h"

namespace modelpool::text_internal {
namespace {

// The code point that byte `b` becomes.
std::array<char32_t, 256> MakeByteCodePoints() {
  std::array<char32_t, 256> code_points{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    code_points[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return code_points;
}

}  // namespace

const std::array<std::string, 256>& ByteLevelChars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> out;
    const std::array<char32_t, 256> code_points = MakeByteCodePoints();
    for (int b = 0; b < 256; ++b) AppendUtf8(code_points[b], &out[b]);
    return out;
  }();
  return chars;
}

int ByteOfLevelChar(char32_t c) {
  static const std::array<int16_t, 512> bytes = [] {
    std::array<int16_t, 512> out;
    out.fill(-1);
    const std::array<char32_t, 256> code_points = MakeByteCodePoints();
    for (int b = 0; b < 256; ++b) out[code_points[b]] = static_cast<int16_t>(b);
    return out;
  }();
  return c < bytes.size() ? bytes[c] : -1;
}

}  // namespace modelpool::text_internal
