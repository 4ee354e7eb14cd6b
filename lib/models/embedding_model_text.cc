#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {

absl::StatusOr<Embeddings> EmbeddingModel::Embed(absl::Span<const std::string> texts,
                                                 const EmbedOptions& options) {
  const State& s = *state_;
  if (s.tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(s.files->name, ": this instance has no tokenizer; use EmbedIds"));
  }
  const EncodeOptions encode{.max_length = static_cast<int>(s.files->max_seq_length),
                             .truncation = true,
                             .add_special_tokens = true};
  EncodedBatch batch;
  int64_t skip = 0;
  if (options.prompt.empty()) {
    batch = s.tokenizer->EncodeBatch(texts, encode);
  } else {
    std::vector<std::string> prompted;
    prompted.reserve(texts.size());
    for (const std::string& text : texts) prompted.push_back(options.prompt + text);
    batch = s.tokenizer->EncodeBatch(prompted, encode);
    // sentence-transformers leaves [CLS] and the prompt's own ids out of pooling.
    if (!s.files->pooling.include_prompt) {
      skip = static_cast<int64_t>(s.tokenizer->Encode(options.prompt, encode).size()) - 1;
    }
  }
  absl::StatusOr<Embeddings> embeddings = EmbedEncoded(batch.ids, options, skip);
  if (embeddings.ok()) {
    embeddings->num_truncated = batch.num_truncated;
    embeddings->truncated_rows = std::move(batch.truncated_rows);
  }
  return embeddings;
}

}  // namespace modelpool
