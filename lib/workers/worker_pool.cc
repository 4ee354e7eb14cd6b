#include "modelpool/workers/worker_pool.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/managers/torch_devices.h"
#include "lib/workers/joined_requests.h"
#include "lib/workers/worker_pool_calls.h"
#include "lib/workers/worker_pool_merging.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {
namespace {

// Requests per worker when a corpus is split, so that a slow request does not leave the
// other workers idle at the end.
constexpr int64_t kRequestsPerWorker = 8;

// Indices of `texts` cut into groups of similar length (longest first), about `size` each.
std::vector<std::vector<int64_t>> GroupByLength(absl::Span<const std::string> texts, int64_t size) {
  std::vector<int64_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return texts[a].size() > texts[b].size(); });
  std::vector<std::vector<int64_t>> groups;
  for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(size)) {
    const size_t end = std::min(order.size(), begin + static_cast<size_t>(size));
    groups.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                        order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return groups;
}

int64_t RequestSize(const CorpusOptions& options, int64_t texts, int workers) {
  if (options.texts_per_request > 0) return options.texts_per_request;
  const int64_t requests = std::max<int64_t>(1, workers) * kRequestsPerWorker;
  return std::max<int64_t>(1, (texts + requests - 1) / requests);
}

// About four bytes of English per token: close enough to place and order requests.
int64_t EstimateTokens(const std::vector<std::string>& texts) {
  int64_t tokens = 0;
  for (const std::string& text : texts) tokens += static_cast<int64_t>(text.size() / 4 + 2);
  return tokens;
}

int64_t EstimateTokens(const EmbedRequest& request) {
  int64_t tokens = EstimateTokens(request.texts);
  for (const auto& row : request.token_ids) tokens += static_cast<int64_t>(row.size());
  return tokens;
}

std::vector<std::string> Gather(absl::Span<const std::string> texts,
                                const std::vector<int64_t>& indices) {
  std::vector<std::string> gathered;
  gathered.reserve(indices.size());
  for (int64_t i : indices) gathered.push_back(texts[i]);
  return gathered;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(WorkerPoolOptions options) {
  if (!options.settings) {
    MODELPOOL_ASSIGN_OR_RETURN(options.settings, Settings::FromEnv());
  }
  // Workers go where the managers' instances can: not on GPUs a CPU-only libtorch cannot use.
  options.inventory = TorchDevices(std::move(options.inventory));
  auto pool = std::unique_ptr<WorkerPool>(new WorkerPool());
  MODELPOOL_RETURN_IF_ERROR(pool->Initialize(std::move(options)));
  return pool;
}

std::shared_ptr<const workers_internal::RunFn> WorkerPool::DefaultProbe(
    std::type_index type) const {
  if (type == typeid(EmbeddingModel)) return workers_internal::EmbeddingProbe();
  if (type == typeid(SummarizationModel)) return workers_internal::SummarizationProbe();
  return nullptr;
}

WorkerPool::WorkerPool() : merging_(std::make_shared<Merging>()) {}

JobHandle<Embeddings> WorkerPool::EmbedJob(
    const std::string& model_id, std::shared_ptr<const EmbedRequest> request, SubmitOptions options,
    std::shared_ptr<workers_internal::Completions> completions, size_t index,
    std::function<void(const absl::StatusOr<Embeddings>&)> on_end) {
  if (options.tokens == 0) options.tokens = EstimateTokens(*request);
  if (request->options.on_progress) {  // progress is a call's own: it runs alone
    return SubmitTracked<EmbeddingModel, Embeddings>(
        model_id,
        [request = std::move(request)](EmbeddingModel& model, workers_internal::ModelCall& call) {
          return workers_internal::EmbedSplitting(model, *request, call);
        },
        options, std::move(completions), index, std::move(on_end));
  }
  Joinable<EmbeddingModel, EmbedRequest, Embeddings> joinable;
  joinable.key = workers_internal::JoinKey(*request);
  joinable.rows = static_cast<int64_t>(request->texts.size() + request->token_ids.size());
  joinable.request = *request;
  joinable.run = &workers_internal::EmbedTogether;
  joinable.tokens = [](const Embeddings& embeddings) { return embeddings.num_tokens; };
  // Alone, a request is split by rows when it runs out of memory.
  CallFn<EmbeddingModel, Embeddings> alone = [request](EmbeddingModel& model,
                                                       workers_internal::ModelCall& call) {
    return workers_internal::EmbedSplitting(model, *request, call);
  };
  return SubmitJoinableTracked(model_id, std::move(joinable), options, std::move(completions),
                               index, std::move(on_end), std::move(alone));
}

JobHandle<std::vector<std::string>> WorkerPool::SummarizeJob(
    const std::string& model_id, std::shared_ptr<const SummarizeRequest> request,
    SubmitOptions options, std::shared_ptr<workers_internal::Completions> completions, size_t index,
    std::function<void(const absl::StatusOr<std::vector<std::string>>&)> on_end) {
  if (options.tokens == 0) options.tokens = EstimateTokens(request->texts);
  Joinable<SummarizationModel, SummarizeRequest, std::vector<std::string>> joinable;
  joinable.key = workers_internal::JoinKey(*request);
  joinable.rows = static_cast<int64_t>(request->texts.size());
  joinable.request = *request;
  joinable.run = &workers_internal::SummarizeTogether;
  CallFn<SummarizationModel, std::vector<std::string>> alone =
      [request](SummarizationModel& model, workers_internal::ModelCall& call) {
        return workers_internal::SummarizeSplitting(model, *request, call);
      };
  return SubmitJoinableTracked(model_id, std::move(joinable), options, std::move(completions),
                               index, std::move(on_end), std::move(alone));
}

namespace {

// Joins the request identical to `request` in flight in `set`, or else submits it with
// `submit(on_end)` as the one in flight; `merged()` counts a join.
template <typename R, typename Request, typename Set, typename Submit, typename Count>
JobHandle<R> JoinOrSubmit(std::shared_ptr<Set> set, const std::string& model_id,
                          std::shared_ptr<const Request> request, const SubmitOptions& options,
                          Submit submit, Count merged) {
  if (!workers_internal::Mergeable(*request, options)) return submit(request, nullptr);
  std::shared_ptr<typename Set::Flight> lead;
  if (std::optional<JobHandle<R>> joined =
          set->Join(workers_internal::RequestKey<Request>{model_id, request, options}, &lead)) {
    merged();
    return *std::move(joined);
  }
  JobHandle<R> handle =
      submit(request, [set, lead](const absl::StatusOr<R>& result) { set->Finish(lead, result); });
  Set::SetId(lead, handle.id);
  return handle;
}

}  // namespace

JobHandle<Embeddings> WorkerPool::SubmitJob(const std::string& model_id, EmbedRequest request,
                                            const SubmitOptions& options) {
  using Set = decltype(Merging::embed);
  return JoinOrSubmit<Embeddings>(
      std::shared_ptr<Set>(merging_, &merging_->embed), model_id,
      std::make_shared<const EmbedRequest>(std::move(request)), options,
      [&](std::shared_ptr<const EmbedRequest> r, auto on_end) {
        return EmbedJob(model_id, std::move(r), options, nullptr, 0, std::move(on_end));
      },
      [&] { CountMerged(model_id); });
}

JobHandle<std::vector<std::string>> WorkerPool::SubmitJob(const std::string& model_id,
                                                          SummarizeRequest request,
                                                          const SubmitOptions& options) {
  using Set = decltype(Merging::summarize);
  return JoinOrSubmit<std::vector<std::string>>(
      std::shared_ptr<Set>(merging_, &merging_->summarize), model_id,
      std::make_shared<const SummarizeRequest>(std::move(request)), options,
      [&](std::shared_ptr<const SummarizeRequest> r, auto on_end) {
        return SummarizeJob(model_id, std::move(r), options, nullptr, 0, std::move(on_end));
      },
      [&] { CountMerged(model_id); });
}

std::future<absl::StatusOr<Embeddings>> WorkerPool::Submit(const std::string& model_id,
                                                           EmbedRequest request,
                                                           const SubmitOptions& options) {
  return SubmitJob(model_id, std::move(request), options).result;
}

std::future<absl::StatusOr<std::vector<std::string>>> WorkerPool::Submit(
    const std::string& model_id, SummarizeRequest request, const SubmitOptions& options) {
  return SubmitJob(model_id, std::move(request), options).result;
}

absl::StatusOr<std::vector<Embeddings>> WorkerPool::EmbedBatches(
    const std::string& model_id, std::vector<std::vector<std::string>> batches,
    const EmbedOptions& embed, const CorpusOptions& options) {
  auto completions = std::make_shared<workers_internal::Completions>();
  std::vector<std::future<absl::StatusOr<Embeddings>>> futures;
  std::vector<int64_t> sizes;
  int64_t total = 0;
  for (std::vector<std::string>& batch : batches) {
    sizes.push_back(static_cast<int64_t>(batch.size()));
    total += sizes.back();
    futures.push_back(
        EmbedJob(model_id,
                 std::make_shared<const EmbedRequest>(EmbedRequest{std::move(batch), embed}),
                 options.submit, completions, futures.size())
            .result);
  }
  WaitReporting(*completions, sizes, total, options.on_progress);
  std::vector<Embeddings> results;
  for (size_t i = 0; i < futures.size(); ++i) {
    absl::StatusOr<Embeddings> result = futures[i].get();
    if (!result.ok()) {
      return absl::Status(result.status().code(), absl::StrCat("batch ", i, " of ", futures.size(),
                                                               ": ", result.status().message()));
    }
    results.push_back(*std::move(result));
  }
  return results;
}

absl::StatusOr<Embeddings> WorkerPool::Embed(const std::string& model_id,
                                             absl::Span<const std::string> corpus,
                                             const CorpusOptions& options,
                                             const EmbedOptions& embed) {
  const int workers = std::max(1, num_workers());
  const std::vector<std::vector<int64_t>> groups =
      GroupByLength(corpus, RequestSize(options, static_cast<int64_t>(corpus.size()), workers));
  std::vector<std::vector<std::string>> batches;
  for (const auto& group : groups) batches.push_back(Gather(corpus, group));
  MODELPOOL_ASSIGN_OR_RETURN(std::vector<Embeddings> parts,
                             EmbedBatches(model_id, std::move(batches), embed, options));
  Embeddings out;
  const int64_t dimension = parts.empty() ? 0 : parts.front().dimension();
  out.tensor = at::empty({static_cast<int64_t>(corpus.size()), dimension}, at::kFloat);
  float* rows = out.tensor.data_ptr<float>();
  out.row_tokens.assign(corpus.size(), 0);
  for (size_t g = 0; g < groups.size(); ++g) {
    out.num_tokens += parts[g].num_tokens;
    out.num_truncated += parts[g].num_truncated;
    for (size_t r = 0; r < groups[g].size(); ++r) {
      const absl::Span<const float> row = parts[g][static_cast<int64_t>(r)];
      std::memcpy(rows + groups[g][r] * dimension, row.data(), row.size() * sizeof(float));
      if (r < parts[g].row_tokens.size()) out.row_tokens[groups[g][r]] = parts[g].row_tokens[r];
    }
    for (const int64_t r : parts[g].truncated_rows) out.truncated_rows.push_back(groups[g][r]);
  }
  std::sort(out.truncated_rows.begin(), out.truncated_rows.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> WorkerPool::Summarize(const std::string& model_id,
                                                               absl::Span<const std::string> texts,
                                                               const GenerationOptions& generation,
                                                               const CorpusOptions& options) {
  const int workers = std::max(1, num_workers());
  const std::vector<std::vector<int64_t>> groups =
      GroupByLength(texts, RequestSize(options, static_cast<int64_t>(texts.size()), workers));
  auto completions = std::make_shared<workers_internal::Completions>();
  std::vector<std::future<absl::StatusOr<std::vector<std::string>>>> futures;
  std::vector<int64_t> sizes;
  for (const auto& group : groups) {
    sizes.push_back(static_cast<int64_t>(group.size()));
    futures.push_back(SummarizeJob(model_id,
                                   std::make_shared<const SummarizeRequest>(
                                       SummarizeRequest{Gather(texts, group), generation}),
                                   options.submit, completions, futures.size())
                          .result);
  }
  WaitReporting(*completions, sizes, static_cast<int64_t>(texts.size()), options.on_progress);
  std::vector<std::string> summaries(texts.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    absl::StatusOr<std::vector<std::string>> part = futures[g].get();
    if (!part.ok()) return part.status();
    if (part->size() != groups[g].size()) {
      return absl::InternalError("a summarization request returned the wrong number of texts");
    }
    for (size_t r = 0; r < groups[g].size(); ++r) summaries[groups[g][r]] = std::move((*part)[r]);
  }
  return summaries;
}

std::unique_ptr<EmbeddingStream> WorkerPool::StreamEmbeddings(const std::string& model_id,
                                                              StreamOptions options,
                                                              const EmbedOptions& embed) {
  // About four bytes of English per token: close enough to size batches.
  auto cost = [](const std::string& text) { return static_cast<int64_t>(text.size() / 4 + 2); };
  auto batch = [embed](EmbeddingModel& model, const std::vector<std::string>& texts)
      -> absl::StatusOr<std::vector<std::vector<float>>> {
    MODELPOOL_ASSIGN_OR_RETURN(Embeddings out, model.Embed(texts, embed));
    return out.vectors();
  };
  return std::make_unique<EmbeddingStream>(this, model_id, std::move(batch), std::move(cost),
                                           options);
}

}  // namespace modelpool
