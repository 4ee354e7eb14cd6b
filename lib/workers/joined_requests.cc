#include "lib/workers/joined_requests.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace modelpool::workers_internal {
namespace {

// An optional as text: "-" when unset, else its value (doubles by their bits, so that two
// different values never read the same).
template <typename V>
std::string OptionText(const std::optional<V>& value) {
  if (!value.has_value()) return "-";
  if constexpr (std::is_same_v<V, double>) {
    uint64_t bits = 0;
    std::memcpy(&bits, &*value, sizeof(bits));
    return absl::StrCat(bits);
  } else if constexpr (std::is_enum_v<V>) {
    return absl::StrCat(static_cast<int>(*value));
  } else {
    return absl::StrCat(*value);
  }
}

// A string as "<length>:<bytes>", so that no two lists of strings read the same.
std::string Counted(const std::string& text) { return absl::StrCat(text.size(), ":", text); }

// Rows [begin, begin + count) of `all`, as a request's own result.
Embeddings Rows(const Embeddings& all, int64_t begin, int64_t count) {
  Embeddings part;
  if (all.tensor.defined()) part.tensor = all.tensor.narrow(0, begin, count).clone();
  for (int64_t r = begin; r < begin + count && r < static_cast<int64_t>(all.row_tokens.size());
       ++r) {
    part.row_tokens.push_back(all.row_tokens[r]);
    part.num_tokens += all.row_tokens[r];
  }
  for (const int64_t row : all.truncated_rows) {
    if (row >= begin && row < begin + count) part.truncated_rows.push_back(row - begin);
  }
  part.num_truncated = static_cast<int64_t>(part.truncated_rows.size());
  return part;
}

int64_t RowsOf(const EmbedRequest& request) {
  return static_cast<int64_t>(request.texts.empty() ? request.token_ids.size()
                                                    : request.texts.size());
}

}  // namespace

std::string JoinKey(const EmbedRequest& request) {
  const EmbedOptions& o = request.options;
  return absl::StrCat(request.texts.empty() && !request.token_ids.empty() ? "ids" : "texts", "|",
                      OptionText(o.normalize), "|", o.max_batch_tokens, "|", Counted(o.prompt));
}

std::string JoinKey(const SummarizeRequest& request) {
  const GenerationOptions& o = request.options;
  return absl::StrCat(OptionText(o.max_new_tokens), "|", OptionText(o.min_new_tokens), "|",
                      OptionText(o.num_beams), "|", OptionText(o.length_penalty), "|",
                      OptionText(o.early_stopping), "|", OptionText(o.no_repeat_ngram_size), "|",
                      o.prefix.has_value() ? Counted(*o.prefix) : "-", "|", o.max_input_tokens);
}

absl::StatusOr<Embeddings> EmbedOne(EmbeddingModel& model, const EmbedRequest& request) {
  if (!request.texts.empty() && !request.token_ids.empty()) {
    return absl::InvalidArgumentError("an embedding request has texts and token ids: give one");
  }
  if (!request.token_ids.empty()) return model.EmbedIds(request.token_ids, request.options);
  return model.Embed(request.texts, request.options);
}

std::vector<absl::StatusOr<Embeddings>> EmbedTogether(
    EmbeddingModel& model, absl::Span<const EmbedRequest* const> requests) {
  std::vector<absl::StatusOr<Embeddings>> results;
  if (requests.size() == 1) {
    results.push_back(EmbedOne(model, *requests.front()));
    return results;
  }
  EmbedRequest all;
  all.options = requests.front()->options;
  for (const EmbedRequest* request : requests) {
    all.texts.insert(all.texts.end(), request->texts.begin(), request->texts.end());
    all.token_ids.insert(all.token_ids.end(), request->token_ids.begin(), request->token_ids.end());
  }
  absl::StatusOr<Embeddings> together = EmbedOne(model, all);
  int64_t begin = 0;
  for (const EmbedRequest* request : requests) {
    if (together.ok()) {
      results.push_back(Rows(*together, begin, RowsOf(*request)));
      begin += RowsOf(*request);
    } else {
      results.push_back(EmbedOne(model, *request));
    }
  }
  return results;
}

std::vector<absl::StatusOr<std::vector<std::string>>> SummarizeTogether(
    SummarizationModel& model, absl::Span<const SummarizeRequest* const> requests) {
  std::vector<absl::StatusOr<std::vector<std::string>>> results;
  if (requests.size() == 1) {
    results.push_back(model.Summarize(requests.front()->texts, requests.front()->options));
    return results;
  }
  std::vector<std::string> texts;
  for (const SummarizeRequest* request : requests) {
    texts.insert(texts.end(), request->texts.begin(), request->texts.end());
  }
  absl::StatusOr<std::vector<std::string>> together =
      model.Summarize(texts, requests.front()->options);
  if (together.ok() && together->size() != texts.size()) {
    together = absl::InternalError(
        absl::StrCat(texts.size(), " texts gave ", together->size(), " summaries"));
  }
  size_t begin = 0;
  for (const SummarizeRequest* request : requests) {
    if (together.ok()) {
      auto first = together->begin() + static_cast<std::ptrdiff_t>(begin);
      results.emplace_back(std::vector<std::string>(
          std::make_move_iterator(first),
          std::make_move_iterator(first + static_cast<std::ptrdiff_t>(request->texts.size()))));
      begin += request->texts.size();
    } else {
      results.push_back(model.Summarize(request->texts, request->options));
    }
  }
  return results;
}

}  // namespace modelpool::workers_internal
