#ifndef MODELPOOL_LIB_TEXT_UNIGRAM_LATTICE_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_UNIGRAM_LATTICE_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/utf8_internal.h"

namespace modelpool::text_internal {

// The unigram segmentation that sentencepiece (`SentencePieceTokenizer`) and the `tokenizers`
// library (`UnigramTokenizer`) share: a trie over the pieces and the Viterbi walk over it.
// `Score` is float for sentencepiece, which keeps its scores in float, and double for
// `tokenizers`, which sums in f64.

inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581

// A double-array trie over the pieces: the child of slot `s` along byte `b` is slot
// `base(s) ^ b` when that slot's `check` is `s`, so each step of the Viterbi walk is two loads
// and a compare. A slot also holds the piece ending there and its score, which the walk then
// reads from the slot it already has. Built as darts-clone builds its arrays: blocks of 256
// slots, each node's children put at the first free slots that fit, looked for only in the last
// few blocks so that building stays linear.
template <typename Score>
class PieceTrie {
 public:
  struct Key {
    std::string_view bytes;
    int32_t id;
    Score score;
  };
  struct Slot {
    int32_t base = 0;  // a slot without children keeps 0: see Walk
    int32_t check = kFree;
    int32_t id = -1;  // the piece ending here, or -1
    Score score = 0;
  };
  static constexpr int32_t kRoot = 0;

  // `keys` must be distinct and non-empty. False when the slots would not fit int32 indices.
  bool Build(std::vector<Key> keys) {
    std::sort(keys.begin(), keys.end(),
              [](const Key& a, const Key& b) { return a.bytes < b.bytes; });
    slots_.clear();
    FreeSlots free;
    if (!AddBlock(free)) return false;
    Unlink(free, kRoot);
    slots_[kRoot].check = kNoParent;
    struct Task {
      int32_t slot;
      size_t lo, hi, depth;
    };
    std::vector<Task> tasks = {{kRoot, 0, keys.size(), 0}};
    std::vector<unsigned char> labels;
    std::vector<size_t> bounds;
    while (!tasks.empty()) {
      Task t = tasks.back();
      tasks.pop_back();
      if (t.lo < t.hi && keys[t.lo].bytes.size() == t.depth) {
        slots_[t.slot].id = keys[t.lo].id;
        slots_[t.slot].score = keys[t.lo].score;
        ++t.lo;
      }
      if (t.lo == t.hi) continue;
      // Keys [lo, hi) share `depth` bytes and are longer: one child per next byte.
      labels.clear();
      bounds.clear();
      for (size_t i = t.lo; i < t.hi;) {
        const auto byte = static_cast<unsigned char>(keys[i].bytes[t.depth]);
        labels.push_back(byte);
        bounds.push_back(i);
        while (i < t.hi && static_cast<unsigned char>(keys[i].bytes[t.depth]) == byte) ++i;
      }
      bounds.push_back(t.hi);
      const int32_t base = FindBase(free, labels);
      if (base < 0) return false;
      slots_[t.slot].base = base;
      for (size_t k = 0; k < labels.size(); ++k) {
        const int32_t child = base ^ labels[k];
        Unlink(free, child);
        slots_[child].check = t.slot;
        tasks.push_back({child, bounds[k], bounds[k + 1], t.depth + 1});
      }
    }
    slots_.shrink_to_fit();
    return true;
  }

  // Moves `*slot` to its child along `byte`; false when it has none. Slots come in whole
  // blocks of 256, and a slot without children has base 0, whose block holds only slots of
  // other parents (or none).
  bool Walk(int32_t* slot, unsigned char byte) const {
    const int32_t next = slots_[*slot].base ^ byte;
    if (slots_[next].check != *slot) return false;
    *slot = next;
    return true;
  }
  const Slot& slot(int32_t s) const { return slots_[s]; }

 private:
  static constexpr int32_t kFree = -1;
  static constexpr int32_t kNoParent = -2;
  static constexpr int32_t kBlock = 256;
  static constexpr int32_t kWindowBlocks = 16;

  // The free slots of the last `kWindowBlocks` blocks, a ring in the order of their positions.
  struct FreeSlots {
    std::vector<int32_t> next, prev;
    int32_t head = -1;
  };

  // Appends a block of free slots; the oldest block of the window leaves it, its free slots
  // left unused. False when the slots would not fit int32 indices.
  bool AddBlock(FreeSlots& free) {
    if (slots_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() - kBlock)) {
      return false;
    }
    const auto begin = static_cast<int32_t>(slots_.size());
    slots_.resize(begin + kBlock);
    free.next.resize(begin + kBlock);
    free.prev.resize(begin + kBlock);
    for (int32_t s = begin; s < begin + kBlock; ++s) {
      if (free.head < 0) {
        free.head = free.next[s] = free.prev[s] = s;
        continue;
      }
      const int32_t tail = free.prev[free.head];
      free.next[tail] = s;
      free.prev[s] = tail;
      free.next[s] = free.head;
      free.prev[free.head] = s;
    }
    const int32_t leaving = begin - kBlock * kWindowBlocks;
    for (int32_t s = leaving; s >= 0 && s < leaving + kBlock; ++s) {
      if (slots_[s].check == kFree) Unlink(free, s);
    }
    return true;
  }

  void Unlink(FreeSlots& free, int32_t s) {
    if (free.next[s] == s) {
      free.head = -1;
      return;
    }
    free.next[free.prev[s]] = free.next[s];
    free.prev[free.next[s]] = free.prev[s];
    if (free.head == s) free.head = free.next[s];
  }

  // A base under which every label's slot is free, or -1 when the slots would not fit int32.
  int32_t FindBase(FreeSlots& free, const std::vector<unsigned char>& labels) {
    const auto fits = [&](int32_t base) {
      return std::all_of(labels.begin(), labels.end(),
                         [&](unsigned char l) { return slots_[base ^ l].check == kFree; });
    };
    for (int32_t s = free.head; s >= 0;) {
      if (fits(s ^ labels[0])) return s ^ labels[0];
      s = free.next[s];
      if (s == free.head) break;
    }
    const auto begin = static_cast<int32_t>(slots_.size());
    return AddBlock(free) ? begin ^ labels[0] : -1;
  }

  std::vector<Slot> slots_;
};

// The best path found so far to one position of the text.
template <typename Score>
struct BestPath {
  int32_t id = -1;
  Score score = 0;
  int64_t starts_at = -1;
};

// ViterbiForward()
//
// Fills `(*best_paths)[end]` with the best path to each character boundary `end` of
// `text_in` (valid UTF-8): the last piece's id and start. A character no piece starts with a
// single-character piece is also reachable as `unk_id` scoring `unk_score`. Of two paths of
// equal score the one found first stays. With `restart_bytes` > 0 the sums start again from 0
// at the first U+2581 at least that far from the last start (see Note [Viterbi arithmetic:
// sentencepiece 0.2 versus 0.1.97]); `trie` must then hold no piece spanning a U+2581.
template <typename Score>
void ViterbiForward(const PieceTrie<Score>& trie, const std::string& text_in, Score unk_score,
                    int32_t unk_id, int64_t restart_bytes,
                    std::vector<BestPath<Score>>* best_paths) {
  const auto size = static_cast<int64_t>(text_in.size());
  best_paths->assign(size + 2, BestPath<Score>{});
  BestPath<Score>* const best = best_paths->data();
  const int64_t spare = size + 1;
  const char* const text = text_in.c_str();
  // From where the sums may start again, at the next word start.
  int64_t restart_from = restart_bytes > 0 ? restart_bytes : size;
  for (int64_t starts_at = 0; starts_at < size;) {
    if (starts_at >= restart_from &&
        text_in.compare(starts_at, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
      best[starts_at].score = 0;  // every path passes here: only the differences matter
      restart_from = starts_at + restart_bytes;
    }
    const Score score_till_here = best[starts_at].score;
    const int64_t char_length = std::min<int64_t>(
        Utf8Length(static_cast<unsigned char>(text_in[starts_at])), size - starts_at);
    bool has_single_char_piece = false;
    int32_t node = PieceTrie<Score>::kRoot;
    for (int64_t key_pos = starts_at;
         key_pos < size && trie.Walk(&node, static_cast<unsigned char>(text[key_pos]));) {
      ++key_pos;
      const typename PieceTrie<Score>::Slot& piece = trie.slot(node);
      const BestPath<Score>& kept = best[key_pos];
      const Score candidate = piece.score + score_till_here;
      const bool is_piece = piece.id >= 0;
      const bool wins = is_piece & ((kept.starts_at == -1) | (candidate > kept.score));
      // Whether a piece ends here and whether it wins are often mispredicted: no branch, a
      // loser is written to the spare entry instead (as a mask, which compilers keep).
      best[spare + ((key_pos - spare) & -static_cast<int64_t>(wins))] = {piece.id, candidate,
                                                                         starts_at};
      has_single_char_piece |= is_piece & (key_pos - starts_at == char_length);
    }
    if (!has_single_char_piece) {
      BestPath<Score>& target = best[starts_at + char_length];
      const Score candidate = unk_score + score_till_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target.score = candidate;
        target.starts_at = starts_at;
        target.id = unk_id;
      }
    }
    starts_at += char_length;
  }
}

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_UNIGRAM_LATTICE_INTERNAL_H_
