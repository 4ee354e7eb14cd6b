#ifndef MODELPOOL_LIB_TEXT_NORMALIZERS_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_NORMALIZERS_INTERNAL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/text/darts_internal.h"
#include "lib/text/tokenizer_json_internal.h"

namespace modelpool::text_internal {

// One step of a tokenizer.json `normalizer`. Immutable; thread-safe.
class NormalizerStep {
 public:
  virtual ~NormalizerStep() = default;
  // `*text` (valid UTF-8) normalized in place.
  virtual void Apply(std::string* text) const = 0;
};

// Normalizer
//
// A tokenizer.json `normalizer` that is null, one of `Precompiled`, `NFC`, `NFD`, `NFKC`,
// `NFKD`, `Replace` (a string, or a regex that is one character repeated: `X+`, `X{n,}`),
// `Strip`, `Prepend`, or a `Sequence` of them. Immutable; thread-safe.
class Normalizer {
 public:
  // `InvalidArgument` naming `file` and the step this SDK does not implement.
  static absl::StatusOr<Normalizer> FromJson(const std::string& file, const Json& section);

  bool empty() const { return steps_.empty(); }
  // `text` (valid UTF-8) normalized into `*out`.
  void Apply(std::string_view text, std::string* out) const;

 private:
  std::vector<std::shared_ptr<const NormalizerStep>> steps_;
};

// A SentencePiece `precompiled_charsmap`: <trie size: u32 little-endian><darts-clone
// units><NUL-terminated replacements>. False when it is broken.
inline bool SplitCharsMap(std::string_view charsmap, DartsTrie* trie,
                          std::string_view* replacements) {
  if (charsmap.size() <= 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(charsmap.data());
  const uint32_t trie_size =
      p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if (trie_size > charsmap.size() - 4) return false;
  *trie = DartsTrie(charsmap.substr(4, trie_size));
  *replacements = charsmap.substr(4 + trie_size);
  return true;
}

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_NORMALIZERS_INTERNAL_H_
