#include "lib/workers/worker_pool_merging.h"

#include <ATen/ATen.h>

#include <tuple>

#include "absl/hash/hash.h"

namespace modelpool {
namespace workers_internal {
namespace {

// Note [What a merged request compares]
// Two requests merge only when everything that shapes their results is equal. These mirrors
// have the fields of the options structs: a field added there without being added to the
// comparisons below makes the sizes differ and the build stop here.
struct EmbedOptionsFields {
  std::optional<bool> normalize;
  std::string prompt;
  int64_t max_batch_tokens;
  std::function<void(int64_t, int64_t)> on_progress;
};
static_assert(sizeof(EmbedOptionsFields) == sizeof(EmbedOptions),
              "EmbedOptions changed: compare its new field in RequestKeyEq and hash it");
struct GenerationOptionsFields {
  std::optional<int> max_new_tokens;
  std::optional<int> min_new_tokens;
  std::optional<int> num_beams;
  std::optional<double> length_penalty;
  std::optional<EarlyStopping> early_stopping;
  std::optional<int> no_repeat_ngram_size;
  std::optional<std::string> prefix;
  int max_input_tokens;
};
static_assert(sizeof(GenerationOptionsFields) == sizeof(GenerationOptions),
              "GenerationOptions changed: compare its new field in RequestKeyEq and hash it");
struct SubmitOptionsFields {
  Priority priority_class;
  int priority;
  absl::Time deadline;
  int64_t tokens;
  std::optional<absl::Duration> execution_timeout;
  bool merge_identical;
};
static_assert(sizeof(SubmitOptionsFields) == sizeof(SubmitOptions),
              "SubmitOptions changed: compare its new field in RequestKeyEq and hash it");

// An optional as two hashable values (Abseil may not hash std::optional).
template <typename T>
std::tuple<bool, T> Opt(const std::optional<T>& value) {
  return {value.has_value(), value.value_or(T())};
}

auto Tie(const SubmitOptions& o) {
  return std::make_tuple(o.priority_class, o.priority, o.deadline, Opt(o.execution_timeout));
}
auto Tie(const EmbedOptions& o) {
  return std::make_tuple(Opt(o.normalize), std::cref(o.prompt), o.max_batch_tokens);
}
auto Tie(const GenerationOptions& o) {
  return std::make_tuple(Opt(o.max_new_tokens), Opt(o.min_new_tokens), Opt(o.num_beams),
                         Opt(o.length_penalty), Opt(o.early_stopping), Opt(o.no_repeat_ngram_size),
                         Opt(o.prefix), o.max_input_tokens);
}

// What a request runs on: its texts, and for embeddings its rows of token ids.
auto Rows(const EmbedRequest& r) { return std::tie(r.texts, r.token_ids); }
auto Rows(const SummarizeRequest& r) { return std::tie(r.texts); }

template <typename Request>
size_t HashOf(const RequestKey<Request>& key) {
  return absl::HashOf(key.model, Rows(*key.request), Tie(key.request->options), Tie(key.options));
}

template <typename Request>
bool Equal(const RequestKey<Request>& a, const RequestKey<Request>& b) {
  return a.model == b.model && Tie(a.options) == Tie(b.options) &&
         Tie(a.request->options) == Tie(b.request->options) && Rows(*a.request) == Rows(*b.request);
}

}  // namespace

size_t RequestKeyHash::operator()(const RequestKey<EmbedRequest>& key) const { return HashOf(key); }
size_t RequestKeyHash::operator()(const RequestKey<SummarizeRequest>& key) const {
  return HashOf(key);
}
bool RequestKeyEq::operator()(const RequestKey<EmbedRequest>& a,
                              const RequestKey<EmbedRequest>& b) const {
  return Equal(a, b);
}
bool RequestKeyEq::operator()(const RequestKey<SummarizeRequest>& a,
                              const RequestKey<SummarizeRequest>& b) const {
  return Equal(a, b);
}

bool Mergeable(const EmbedRequest& request, const SubmitOptions& options) {
  return options.merge_identical && !request.options.on_progress;
}
bool Mergeable(const SummarizeRequest&, const SubmitOptions& options) {
  return options.merge_identical;
}

}  // namespace workers_internal

WorkerPool::Merging::Merging()
    : embed([](const Embeddings& e) {
        // A copy of its own: the callers must not share a tensor one of them may change.
        Embeddings copy = e;
        copy.tensor = e.tensor.clone();
        return copy;
      }),
      summarize([](const std::vector<std::string>& s) { return s; }) {}

}  // namespace modelpool
