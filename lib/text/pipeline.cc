#include <algorithm>

#include "lib/text/pipeline_internal.h"

namespace modelpool::text_internal {

void AddedVocabulary::Build(const std::vector<AddedToken>& tokens, const Normalizer& normalizer,
                            int32_t size) {
  for (const AddedToken& token : tokens) size = std::max(size, token.id + 1);
  content.assign(size, "");
  special.assign(size, false);
  for (const AddedToken& token : tokens) {
    content[token.id] = token.content;
    special[token.id] = token.special;
    if (!token.normalized) {
      raw.Add(token);
      continue;
    }
    AddedToken form = token;
    normalizer.Apply(token.content, &form.content);
    normalized.Add(form);
  }
}

}  // namespace modelpool::text_internal
