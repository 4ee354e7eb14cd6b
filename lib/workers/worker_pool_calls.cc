#include "lib/workers/worker_pool_calls.h"

#include <ATen/ATen.h>

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "lib/workers/oom_split.h"

namespace modelpool::workers_internal {
namespace {

constexpr char kProbeText[] = "modelpool checks that this instance works.";

// The pieces' outputs joined in row order, or the first failure: a row that did not fit alone
// is named.
template <typename Out, typename Join>
absl::StatusOr<Out> Joined(std::vector<Piece<Out>> pieces, int64_t rows, const ModelCall& call,
                           Join join) {
  std::vector<Out> outs;
  for (Piece<Out>& piece : pieces) {
    if (piece.result.ok()) {
      outs.push_back(*std::move(piece.result));
      continue;
    }
    if (IsOutOfMemory(piece.result) && piece.end - piece.begin == 1) {
      return absl::ResourceExhaustedError(
          absl::StrCat("text ", piece.begin, " of ", rows, " does not fit in the memory of ",
                       call.device().ToString(), " even alone: ", piece.result.status().message()));
    }
    return piece.result.status();
  }
  return join(std::move(outs));
}

template <typename Out>
std::vector<Piece<Out>> Split(int64_t rows, ModelCall& call,
                              const std::function<absl::StatusOr<Out>(int64_t, int64_t)>& run) {
  return RunSplitting<Out>(
      rows, run,
      OomRetry{call.split_on_oom(), [&call] { call.ReleaseCachedMemory(); }, &call.counters()});
}

}  // namespace

absl::StatusOr<Embeddings> EmbedSplitting(EmbeddingModel& model, const EmbedRequest& request,
                                          ModelCall& call) {
  if (!request.texts.empty() && !request.token_ids.empty()) {
    return absl::InvalidArgumentError("an embedding request has texts and token ids: give one");
  }
  // Rows of texts, or of ids already tokenized.
  const absl::Span<const std::string> texts(request.texts);
  const absl::Span<const std::vector<int32_t>> ids(request.token_ids);
  const bool of_ids = !ids.empty();
  const auto rows = static_cast<int64_t>(of_ids ? ids.size() : texts.size());
  auto embed = [&](int64_t begin, int64_t end) {
    const auto first = static_cast<size_t>(begin);
    const auto count = static_cast<size_t>(end - begin);
    return call.Run("embedding", [&] {
      return of_ids ? model.EmbedIds(ids.subspan(first, count), request.options)
                    : model.Embed(texts.subspan(first, count), request.options);
    });
  };
  if (rows == 0) return embed(0, 0);
  std::vector<Piece<Embeddings>> pieces = Split<Embeddings>(rows, call, embed);
  return Joined<Embeddings>(std::move(pieces), rows, call, [](std::vector<Embeddings> parts) {
    if (parts.size() == 1) return std::move(parts.front());
    Embeddings joined;
    std::vector<at::Tensor> tensors;
    int64_t first_row = 0;  // of the part, in the whole request
    for (const Embeddings& part : parts) {
      tensors.push_back(part.tensor);
      joined.num_tokens += part.num_tokens;
      joined.num_truncated += part.num_truncated;
      joined.row_tokens.insert(joined.row_tokens.end(), part.row_tokens.begin(),
                               part.row_tokens.end());
      for (const int64_t row : part.truncated_rows)
        joined.truncated_rows.push_back(first_row + row);
      first_row += part.size();
    }
    joined.tensor = at::cat(tensors, 0);
    return joined;
  });
}

absl::StatusOr<std::vector<std::string>> SummarizeSplitting(SummarizationModel& model,
                                                            const SummarizeRequest& request,
                                                            ModelCall& call) {
  using Summaries = std::vector<std::string>;
  const absl::Span<const std::string> texts(request.texts);
  const auto rows = static_cast<int64_t>(texts.size());
  if (rows == 0) {
    return call.Run("summarizing", [&] { return model.Summarize(texts, request.options); });
  }
  std::vector<Piece<Summaries>> pieces =
      Split<Summaries>(rows, call, [&](int64_t begin, int64_t end) {
        return call.Run("summarizing", [&] {
          return model.Summarize(
              texts.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)),
              request.options);
        });
      });
  return Joined<Summaries>(std::move(pieces), rows, call, [](std::vector<Summaries> parts) {
    Summaries joined;
    for (Summaries& part : parts) {
      for (std::string& summary : part) joined.push_back(std::move(summary));
    }
    return joined;
  });
}

std::shared_ptr<const RunFn> EmbeddingProbe() {
  return std::make_shared<const RunFn>([](void* instance, ModelCall& call) -> absl::Status {
    auto& model = *static_cast<EmbeddingModel*>(instance);
    const std::vector<std::string> texts = {kProbeText};
    absl::StatusOr<Embeddings> out = call.Run("a health check", [&] { return model.Embed(texts); });
    if (!out.ok()) return out.status();
    if (out->size() != 1 || !at::isfinite(out->tensor).all().item<bool>()) {
      return absl::InternalError("a health check gave no finite vector");
    }
    return absl::OkStatus();
  });
}

std::shared_ptr<const RunFn> SummarizationProbe() {
  return std::make_shared<const RunFn>([](void* instance, ModelCall& call) -> absl::Status {
    auto& model = *static_cast<SummarizationModel*>(instance);
    const std::vector<std::string> texts = {kProbeText};
    GenerationOptions options;
    options.max_new_tokens = 2;
    options.num_beams = 1;
    absl::StatusOr<std::vector<std::string>> out =
        call.Run("a health check", [&] { return model.Summarize(texts, options); });
    if (!out.ok()) return out.status();
    if (out->size() != 1) return absl::InternalError("a health check gave no summary");
    return absl::OkStatus();
  });
}

}  // namespace modelpool::workers_internal
