#include "lib/models/generation/encoder_decoder_summarizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "ATen/ATen.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "c10/core/InferenceMode.h"
#include "c10/core/StreamGuard.h"
#include "lib/models/generation/static_steps.h"
#include "lib/models/torch_status.h"
#include "modelpool/base/status.h"

#ifdef MODELPOOL_TORCH_CUDA
#include "c10/cuda/CUDAStream.h"
#endif

namespace modelpool {
namespace {

// transformers' default where neither the options nor the folder say.
constexpr int64_t kDefaultMaxNewTokens = 20;

// Runs `fn` on `stream` (when set) in inference mode, turning exceptions into statuses.
template <typename Fn>
auto OnStream(const std::optional<c10::Stream>& stream, absl::string_view what, Fn&& fn)
    -> decltype(fn()) {
  return CallTorch(what, [&]() -> decltype(fn()) {
    c10::InferenceMode inference;
    if (!stream.has_value()) return fn();
    c10::StreamGuard guard(*stream);
    return fn();
  });
}

}  // namespace

EncoderDecoderSummarizer::EncoderDecoderSummarizer(std::shared_ptr<const SummarizerSpec> spec,
                                                   std::unique_ptr<EncoderDecoder> model,
                                                   std::optional<c10::Stream> stream)
    : spec_(std::move(spec)), model_(std::move(model)), stream_(stream) {}

absl::StatusOr<std::unique_ptr<EncoderDecoderSummarizer>> EncoderDecoderSummarizer::Load(
    std::shared_ptr<const SummarizerSpec> spec, c10::Device device, const SummarizerLimits& limits,
    const ModelMaker& make) {
  if (limits.max_batch_size < 1 || limits.max_num_beams < 1 || limits.max_input_tokens < 1 ||
      limits.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        "summarizer limits (batch, beams, input and new tokens) must be >= 1");
  }
  std::optional<c10::Stream> stream;
#ifdef MODELPOOL_TORCH_CUDA
  if (device.is_cuda()) {
    stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index()).unwrap();
  }
#endif
  if (device.is_cuda() && !stream.has_value()) {
    return absl::FailedPreconditionError("this build of the SDK has no CUDA support");
  }
  MODELPOOL_ASSIGN_OR_RETURN(
      std::unique_ptr<EncoderDecoder> model,
      OnStream(stream, absl::StrCat("loading ", spec->name, " on ", device.str()), make));
  return std::unique_ptr<EncoderDecoderSummarizer>(
      new EncoderDecoderSummarizer(std::move(spec), std::move(model), stream));
}

Device EncoderDecoderSummarizer::device() const {
  const c10::Device d = model_->device();
  return d.is_cuda() ? Device::Cuda(d.index()) : Device::Cpu();
}

absl::StatusOr<SearchOptions> EncoderDecoderSummarizer::Resolve(const GenerationOptions& o) const {
  const GenerationDefaults& g = spec_->generation;
  const SummarizerLimits& limits = model_->limits();
  SearchOptions s;
  s.eos_token_ids = spec_->ids.eos_token_ids;
  s.pad_token_id = spec_->ids.pad_token_id;
  s.decoder_start_token_id = spec_->ids.decoder_start_token_id;
  s.forced_bos_token_id = g.forced_bos_token_id;
  s.forced_eos_token_ids = g.forced_eos_token_ids;
  // max_length and min_length count the decoder start token. transformers applies a folder's
  // min_length and min_new_tokens both; an asked-for min_new_tokens replaces them.
  s.max_new_tokens = o.max_new_tokens   ? *o.max_new_tokens
                     : g.max_new_tokens ? *g.max_new_tokens
                     : g.max_length     ? *g.max_length - 1
                                        : kDefaultMaxNewTokens;
  s.min_new_tokens = o.min_new_tokens
                         ? *o.min_new_tokens
                         : std::max(g.min_new_tokens.value_or(0), g.min_length.value_or(1) - 1);
  s.num_beams = o.num_beams ? *o.num_beams : g.num_beams.value_or(1);
  s.length_penalty = o.length_penalty ? *o.length_penalty : g.length_penalty.value_or(1.0);
  s.no_repeat_ngram_size =
      o.no_repeat_ngram_size ? *o.no_repeat_ngram_size : g.no_repeat_ngram_size.value_or(0);
  s.early_stopping =
      o.early_stopping ? *o.early_stopping : g.early_stopping.value_or(EarlyStopping::kHeuristic);

  if (s.max_new_tokens < 1 || s.max_new_tokens > limits.max_new_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens is ", s.max_new_tokens, "; this instance takes 1 to ",
                     limits.max_new_tokens, " (the manager's max_new_tokens)"));
  }
  if (s.min_new_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("min_new_tokens is ", s.min_new_tokens));
  }
  if (s.min_new_tokens > s.max_new_tokens) {
    // Both asked for: a contradiction. A minimum from generation_config.json yields to the
    // maximum asked for, as transformers lets max_new_tokens end the text first.
    if (o.min_new_tokens.has_value() && o.max_new_tokens.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "min_new_tokens ", s.min_new_tokens, " is above max_new_tokens ", s.max_new_tokens));
    }
    s.min_new_tokens = s.max_new_tokens;
  }
  if (s.num_beams < 1 || s.num_beams > limits.max_num_beams) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_beams is ", s.num_beams, "; this instance takes 1 to ",
                     limits.max_num_beams, " (the manager's max_num_beams)"));
  }
  if (s.no_repeat_ngram_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no_repeat_ngram_size is ", s.no_repeat_ngram_size));
  }
  if (!std::isfinite(s.length_penalty)) {
    return absl::InvalidArgumentError("length_penalty is not a finite number");
  }
  return s;
}

absl::Status EncoderDecoderSummarizer::CheckRows(
    absl::Span<const std::vector<int32_t>> rows) const {
  const int64_t vocab = spec_->vocab_size;
  const int64_t max_length = model_->limits().max_input_tokens;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty())
      return absl::InvalidArgumentError(absl::StrCat("input row ", i, " is empty"));
    if (static_cast<int64_t>(rows[i].size()) > max_length) {
      return absl::InvalidArgumentError(absl::StrCat("input row ", i, " has ", rows[i].size(),
                                                     " ids; this instance takes up to ", max_length,
                                                     " (the manager's max_input_tokens)"));
    }
    for (int32_t id : rows[i]) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("input row ", i, " has id ", id, ", outside the vocabulary of ", vocab));
      }
    }
  }
  return absl::OkStatus();
}

std::pair<at::Tensor, at::Tensor> EncoderDecoderSummarizer::Pad(
    absl::Span<const std::vector<int32_t>> rows) const {
  size_t length = 0;
  for (const std::vector<int32_t>& row : rows) length = std::max(length, row.size());
  const int64_t batch = static_cast<int64_t>(rows.size());
  at::Tensor ids =
      at::full({batch, static_cast<int64_t>(length)}, spec_->ids.pad_token_id, at::kLong);
  at::Tensor mask = at::zeros({batch, static_cast<int64_t>(length)}, at::kBool);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t* dst = ids.data_ptr<int64_t>() + b * static_cast<int64_t>(length);
    bool* valid = mask.data_ptr<bool>() + b * static_cast<int64_t>(length);
    for (size_t i = 0; i < rows[b].size(); ++i) {
      dst[i] = rows[b][i];
      valid[i] = true;
    }
  }
  const c10::Device device = model_->device();
  return {ids.to(device), mask.to(device)};
}

absl::StatusOr<std::vector<std::vector<int32_t>>> EncoderDecoderSummarizer::Generate(
    absl::Span<const std::vector<int32_t>> input_ids, const GenerationOptions& options) {
  MODELPOOL_ASSIGN_OR_RETURN(const SearchOptions search, Resolve(options));
  MODELPOOL_RETURN_IF_ERROR(CheckRows(input_ids));
  const SummarizerLimits& limits = model_->limits();
  // Beams multiply the rows, and the caches hold max_rows() of them.
  const size_t per_batch =
      static_cast<size_t>(std::min(limits.max_batch_size, limits.max_rows() / search.num_beams));
  std::vector<std::vector<int32_t>> out;
  out.reserve(input_ids.size());
  for (size_t begin = 0; begin < input_ids.size(); begin += per_batch) {
    const absl::Span<const std::vector<int32_t>> rows =
        input_ids.subspan(begin, std::min(per_batch, input_ids.size() - begin));
    MODELPOOL_ASSIGN_OR_RETURN(
        std::vector<std::vector<int32_t>> generated,
        OnStream(stream_, "generating", [&]() -> absl::StatusOr<std::vector<std::vector<int32_t>>> {
          const auto [ids, mask] = Pad(rows);
          model_->StartDecoding(model_->Encode(ids, mask), mask, search.num_beams);
          const auto batch = static_cast<int64_t>(rows.size());
          MODELPOOL_ASSIGN_OR_RETURN(
              const DecoderSteps steps,
              ChooseDecoderSteps(*model_, model_->device(), search.max_new_tokens));
          if (steps == DecoderSteps::kEager) {
            return GenerateIds(*model_, batch, search, model_->device());
          }
          return GenerateIds(StepsFor(steps, batch * search.num_beams), batch, search,
                             model_->device());
        }));
    for (std::vector<int32_t>& row : generated) out.push_back(std::move(row));
  }
  return out;
}

// Note [Reusing decoder graphs]
// Capturing a step in a CUDA graph costs as much host time as several steps (every kernel of
// the step launched into the capture, then the graph instantiated), and a batch of 64 steps
// would pay it each time. A graph stays valid as long as what it reads stays where it was:
// the weights, the caches and the batch's buffers do (DecoderCaches::StepShape), and so do the
// inputs of its StaticSteps. So the instance keeps the static steps, with their graph, of the
// last batch shape, and a batch of that shape (a service's usual full batch) replays it from
// its first step. One, not more: a graph holds its own memory for a step's intermediate values
// (the logits of every row are the largest), and the pool measures an instance's footprint
// once, after a warm-up that leaves the graph of the largest shape. Each further graph kept
// would be memory the pool never measured; one of any other shape is smaller.
StaticSteps& EncoderDecoderSummarizer::StepsFor(DecoderSteps mode, int64_t rows) {
  const std::array<int64_t, 3> step = model_->StepShape();
  const std::array<int64_t, 4> shape = {step[0], step[1], step[2], static_cast<int64_t>(mode)};
  if (kept_steps_ != nullptr && kept_shape_ == shape) return *kept_steps_;
  kept_steps_.reset();  // its graph's memory first
  kept_steps_ =
      std::make_unique<StaticSteps>(*model_, rows, model_->device(), mode == DecoderSteps::kGraph);
  kept_shape_ = shape;
  return *kept_steps_;
}

absl::StatusOr<std::vector<std::string>> EncoderDecoderSummarizer::Summarize(
    absl::Span<const std::string> texts, const GenerationOptions& options) {
  const Tokenizer* tokenizer = spec_->tokenizer.get();
  if (tokenizer == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(spec_->name, " has no tokenizer"));
  }
  const int64_t limit = model_->limits().max_input_tokens;
  if (options.max_input_tokens < 0 || options.max_input_tokens > limit) {
    return absl::InvalidArgumentError(absl::StrCat("max_input_tokens is ", options.max_input_tokens,
                                                   "; this instance takes up to ", limit,
                                                   " (0 means that limit)"));
  }
  EncodeOptions encode;
  encode.max_length =
      options.max_input_tokens > 0 ? options.max_input_tokens : static_cast<int>(limit);
  const std::string& prefix = options.prefix.has_value() ? *options.prefix : spec_->prefix;
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  for (const std::string& text : texts) rows.push_back(tokenizer->Encode(prefix + text, encode));
  // Texts of similar length share a batch: less padding.
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].size() > rows[b].size(); });
  std::vector<std::vector<int32_t>> sorted;
  sorted.reserve(rows.size());
  for (size_t i : order) sorted.push_back(std::move(rows[i]));
  MODELPOOL_ASSIGN_OR_RETURN(const std::vector<std::vector<int32_t>> generated,
                             Generate(sorted, options));
  std::vector<std::string> summaries(texts.size());
  for (size_t i = 0; i < order.size(); ++i) summaries[order[i]] = tokenizer->Decode(generated[i]);
  return summaries;
}

absl::Status EncoderDecoderSummarizer::WarmUp() {
  const SummarizerLimits& limits = model_->limits();
  const int64_t vocab = spec_->vocab_size;
  std::vector<std::vector<int32_t>> rows(limits.max_batch_size,
                                         std::vector<int32_t>(limits.max_input_tokens));
  for (std::vector<int32_t>& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<int32_t>(i % vocab);
  }
  GenerationOptions options;
  options.num_beams = static_cast<int>(limits.max_num_beams);
  options.max_new_tokens = static_cast<int>(std::min<int64_t>(2, limits.max_new_tokens));
  options.min_new_tokens = options.max_new_tokens;
  options.no_repeat_ngram_size = 0;
  return Generate(rows, options).status();
}

absl::StatusOr<std::pair<at::Tensor, at::Tensor>> EncoderDecoderSummarizer::FirstStep(
    absl::Span<const int32_t> ids) {
  const std::vector<std::vector<int32_t>> rows = {std::vector<int32_t>(ids.begin(), ids.end())};
  MODELPOOL_RETURN_IF_ERROR(CheckRows(rows));
  return OnStream(stream_, "first step",
                  [&]() -> absl::StatusOr<std::pair<at::Tensor, at::Tensor>> {
                    const auto [input, mask] = Pad(rows);
                    const at::Tensor hidden = model_->Encode(input, mask);
                    model_->StartDecoding(hidden, mask, 1);
                    const at::Tensor start =
                        at::full({1}, spec_->ids.decoder_start_token_id,
                                 at::TensorOptions().dtype(at::kLong).device(model_->device()));
                    const at::Tensor logits = model_->Step(start, 0);
                    return std::make_pair(hidden.to(at::kCPU, at::kFloat), logits.to(at::kCPU));
                  });
}

}  // namespace modelpool
