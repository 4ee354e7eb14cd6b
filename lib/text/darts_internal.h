#ifndef MODELPOOL_LIB_TEXT_DARTS_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_DARTS_INTERNAL_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace modelpool::text_internal {

// DartsTrie
//
// Reads a darts-clone double-array trie as SentencePiece stores it (the precompiled character
// map of a normalizer): 32-bit little-endian units. Each unit holds a label (its low byte, or a
// value when bit 31 is set), a has-leaf bit (8) and the offset to its children (bits 10..31,
// shifted by 8 more when bit 9 is set). Every index is checked, so a malformed blob gives no
// matches instead of reading out of bounds.
class DartsTrie {
 public:
  DartsTrie() = default;
  explicit DartsTrie(std::string_view units) : units_(units.data()), size_(units.size() / 4) {}

  bool empty() const { return size_ == 0; }

  // Whether some key starts with `prefix`.
  bool HasKeyWithPrefix(std::string_view prefix) const {
    if (size_ == 0) return false;
    uint64_t pos = Offset(Unit(0));
    for (const char c : prefix) {
      const auto label = static_cast<unsigned char>(c);
      pos ^= label;
      if (pos >= size_) return false;
      const uint32_t unit = Unit(pos);
      if ((unit & ((1U << 31) | 0xFF)) != label) return false;
      pos ^= Offset(unit);
    }
    return true;
  }

  // Calls `fn(length, value)` for each key that is a prefix of `key`, shortest first.
  template <typename Fn>
  void ForEachPrefix(std::string_view key, const Fn& fn) const {
    if (size_ == 0) return;
    uint32_t unit = Unit(0);
    uint64_t pos = Offset(unit);
    for (size_t i = 0; i < key.size(); ++i) {
      const auto label = static_cast<unsigned char>(key[i]);
      pos ^= label;
      if (pos >= size_) return;
      unit = Unit(pos);
      if ((unit & ((1U << 31) | 0xFF)) != label) return;
      pos ^= Offset(unit);
      if ((unit >> 8) & 1) {
        if (pos >= size_) return;
        fn(i + 1, static_cast<int32_t>(Unit(pos) & ((1U << 31) - 1)));
      }
    }
  }

 private:
  uint32_t Unit(uint64_t i) const {
    unsigned char b[4];
    std::memcpy(b, units_ + i * 4, 4);
    return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  static uint64_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); }

  const char* units_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_DARTS_INTERNAL_H_
