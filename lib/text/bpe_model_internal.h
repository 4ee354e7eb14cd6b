#ifndef MODELPOOL_LIB_TEXT_BPE_MODEL_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_BPE_MODEL_INTERNAL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace modelpool::text_internal {

// BpeModel
//
// The `BPE` model of the `tokenizers` library over byte-level words: a word's bytes start as
// the tokens of their byte-level characters, then the pair of adjacent tokens whose merge
// ranks first (the leftmost of equal ones) is merged, again and again, as its `Word::merge_all`
// does with a heap, so that a long word costs n log n. Words of fewer than 256 bytes are
// remembered per thread (10000 at most, as the reference's cache). Immutable after `Build()`;
// `Encode()` is thread-safe.
class BpeModel {
 public:
  struct Options {
    std::string unk_token;  // empty: none
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
  };

  BpeModel();

  // `vocab` maps tokens (byte-level strings) to ids; `merges` are the pairs in rank order.
  // `InvalidArgument` (without a file name) when a merge names a token, or makes one, that is
  // not in the vocabulary.
  absl::Status Build(absl::flat_hash_map<std::string, int32_t> vocab,
                     const std::vector<std::pair<std::string, std::string>>& merges,
                     const Options& options);

  // Appends the ids of one pre-tokenized word, given as its raw bytes.
  void Encode(std::string_view word, std::vector<int32_t>* ids) const;

  // The token of `id`, or null when the model has none.
  const std::string* TokenOf(int32_t id) const;
  // The id of `token`, or -1.
  int32_t IdOf(std::string_view token) const;
  // One past the largest id.
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  struct MergeRank {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void MergeWord(std::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;  // by id; empty where none
  std::vector<bool> has_token_;
  absl::flat_hash_map<uint64_t, MergeRank> merges_;
  std::array<int32_t, 256> byte_ids_{};      // the token of each byte's character, or -1
  std::array<int32_t, 256> fallback_ids_{};  // <0xXX>, or -1
  int32_t unk_id_ = -1;
  Options options_;
  uint64_t cache_key_;  // names this model in the per-thread caches
};

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_BPE_MODEL_INTERNAL_H_
