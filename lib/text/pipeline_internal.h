#ifndef MODELPOOL_LIB_TEXT_PIPELINE_INTERNAL_H_
#define MODELPOOL_LIB_TEXT_PIPELINE_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/added_tokens_internal.h"
#include "lib/text/normalizers_internal.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool::text_internal {

// The added vocabulary of a tokenizer.json and the steps every `tokenizers` pipeline shares:
// added tokens split off the raw text, the normalizer on the rest, added tokens with
// `normalized` split off the normalized text, then the model's own pre-tokenizer and model on
// each remaining piece, and the post-processor's special tokens with truncation.
struct AddedVocabulary {
  AddedTokenMatcher raw;             // matched before normalization
  AddedTokenMatcher normalized;      // matched in normalized text, by their normalized form
  std::vector<std::string> content;  // by id; empty where none
  std::vector<bool> special;         // by id

  // `size` is at least one past the largest model id.
  void Build(const std::vector<AddedToken>& tokens, const Normalizer& normalizer, int32_t size);
  bool IsAdded(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(content.size()) && !content[id].empty();
  }
};

// Calls `on_text(piece, at_start)` for each non-empty normalized piece of `text` (valid UTF-8)
// between added tokens, whose ids go to `*ids` in order; `at_start` says that the piece begins
// the text.
template <typename OnText>
void SplitOffAddedTokens(std::string_view text, const AddedVocabulary& added,
                         const Normalizer& normalizer, std::vector<int32_t>* ids,
                         const OnText& on_text) {
  added.raw.Split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
    const bool at_start = piece.data() == text.data();
    std::string_view normalized = piece;
    std::string local;
    if (!normalizer.empty()) {
      normalizer.Apply(piece, &local);
      normalized = local;
    }
    added.normalized.Split(normalized, [&](std::string_view part, int32_t part_id) {
      if (part_id >= 0) {
        ids->push_back(part_id);
      } else if (!part.empty()) {
        on_text(part, at_start && part.data() == normalized.data());
      }
    });
  });
}

// The ids of a text: `before`, the ids `encode_content(&ids)` appends, cut to fit
// `options.max_length`, and `after`; the special tokens only with `add_special_tokens`.
template <typename EncodeContent>
std::vector<int32_t> FrameIds(const std::vector<int32_t>& before, const std::vector<int32_t>& after,
                              const EncodeOptions& options, bool* truncated,
                              const EncodeContent& encode_content) {
  std::vector<int32_t> ids;
  if (options.add_special_tokens) ids.insert(ids.end(), before.begin(), before.end());
  const size_t content_start = ids.size();
  encode_content(&ids);
  const size_t num_special = options.add_special_tokens ? before.size() + after.size() : 0;
  bool cut = false;
  if (options.truncation && options.max_length > 0) {
    const size_t budget = static_cast<size_t>(options.max_length) > num_special
                              ? options.max_length - num_special
                              : 0;
    if (ids.size() - content_start > budget) {
      ids.resize(content_start + budget);
      cut = true;
    }
  }
  if (options.add_special_tokens) ids.insert(ids.end(), after.begin(), after.end());
  if (truncated != nullptr) *truncated = cut;
  return ids;
}

}  // namespace modelpool::text_internal

#endif  // MODELPOOL_LIB_TEXT_PIPELINE_INTERNAL_H_
