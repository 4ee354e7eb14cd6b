#ifndef MODELPOOL_LIB_TEXT_ADDED_TOKENS_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_ADDED_TOKENS_INTERNAL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modelpool::text_internal {

// A token of the added vocabulary (`added_tokens` in tokenizer.json).
struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
  bool single_word = false;
};

// AddedTokenMatcher
//
// Finds added tokens in text as the reference's `AddedVocabulary::find_matches` does: its
// Aho-Corasick automaton takes the leftmost match, the longest of those, and goes on after it;
// a `single_word` token is skipped where a word character (`\w`) touches it; `lstrip` and
// `rstrip` take the adjacent White_Space along. Immutable once built.
class AddedTokenMatcher {
 public:
  void Add(const AddedToken& token);
  bool empty() const { return patterns_.empty(); }

  // Calls `emit(piece, id)` for consecutive pieces covering `text`: an added token's span with
  // its id, or text between tokens with id -1 (once, empty, for an empty text).
  template <typename Emit>
  void Split(std::string_view text, const Emit& emit) const {
    if (patterns_.empty() || text.empty()) {
      emit(text, -1);
      return;
    }
    size_t done = 0;  // end of the last emitted piece
    size_t i = 0;
    while (i < text.size()) {
      const Pattern* match = nullptr;
      for (; i < text.size(); ++i) {
        if (!first_bytes_[static_cast<unsigned char>(text[i])]) continue;
        match = MatchAt(text, i);
        if (match != nullptr) break;
      }
      if (match == nullptr) break;
      const size_t end = i + match->content.size();
      if (match->single_word && !IsSingleWord(text, i, end)) {
        i = end;
        continue;
      }
      size_t start = i;
      size_t stop = end;
      if (match->lstrip) start = std::max(done, WhitespaceRunBefore(text, start));
      if (match->rstrip) stop = WhitespaceRunAfter(text, stop);
      if (done < start) emit(text.substr(done, start - done), -1);
      emit(text.substr(start, stop - start), match->id);
      done = stop;
      // The reference goes on at `end`; from `stop`, a token that starts with whitespace
      // cannot overlap the one before.
      i = stop;
    }
    if (done < text.size()) emit(text.substr(done), -1);
  }

 private:
  struct Pattern {
    std::string content;
    int32_t id;
    bool lstrip;
    bool rstrip;
    bool single_word;
  };

  const Pattern* MatchAt(std::string_view text, size_t i) const;
  static bool IsSingleWord(std::string_view text, size_t start, size_t end);
  // Where the run of White_Space that ends at `end` starts.
  static size_t WhitespaceRunBefore(std::string_view text, size_t end);
  // Where the run of White_Space that starts at `begin` ends.
  static size_t WhitespaceRunAfter(std::string_view text, size_t begin);

  std::vector<Pattern> patterns_;  // longest first
  std::array<bool, 256> first_bytes_{};
};

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_ADDED_TOKENS_INTERNAL_H_
