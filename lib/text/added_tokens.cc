#include <algorithm>

#include "lib/text/added_tokens_internal.h"
#include "lib/text/unicode_classes_internal.h"
#include "lib/text/utf8_internal.h"

namespace modelpool::text_internal {

void AddedTokenMatcher::Add(const AddedToken& token) {
  if (token.content.empty()) return;
  first_bytes_[static_cast<unsigned char>(token.content[0])] = true;
  patterns_.push_back({token.content, token.id, token.lstrip, token.rstrip, token.single_word});
  // Longest first, so the first pattern that matches at a position is the longest one.
  std::stable_sort(patterns_.begin(), patterns_.end(), [](const Pattern& a, const Pattern& b) {
    return a.content.size() > b.content.size();
  });
}

const AddedTokenMatcher::Pattern* AddedTokenMatcher::MatchAt(std::string_view text,
                                                             size_t i) const {
  for (const Pattern& p : patterns_) {
    if (text.compare(i, p.content.size(), p.content) == 0) return &p;
  }
  return nullptr;
}

bool AddedTokenMatcher::IsSingleWord(std::string_view text, size_t start, size_t end) {
  size_t unused;
  if (start > 0 && IsWordChar(LastChar(text.substr(0, start), &unused))) return false;
  return end == text.size() || !IsWordChar(FirstChar(text.substr(end)));
}

size_t AddedTokenMatcher::WhitespaceRunBefore(std::string_view text, size_t end) {
  size_t start = end;
  while (start > 0) {
    size_t p;
    if (!IsWhiteSpace(LastChar(text.substr(0, start), &p))) break;
    start = p;
  }
  return start;
}

size_t AddedTokenMatcher::WhitespaceRunAfter(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    char32_t c;
    const int len = DecodeUtf8(text.data() + begin, &c);
    if (!IsWhiteSpace(c)) break;
    begin += len;
  }
  return begin;
}

}  // namespace modelpool::text_internal
