#include "lib/models/t5/t5_summarization_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "ATen/ATen.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "c10/core/InferenceMode.h"
#include "c10/core/StreamGuard.h"
#include "c10/core/impl/VirtualGuardImpl.h"
#include "lib/base/saturating.h"
#include "lib/models/formats/weights.h"
#include "lib/models/torch_status.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

#ifdef MODELPOOL_TORCH_CUDA
#include "c10/cuda/CUDAStream.h"
#endif

namespace modelpool {
namespace {

// transformers' defaults where neither the options nor generation_config.json say.
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

absl::StatusOr<std::shared_ptr<const T5Folder>> T5Folder::Read(const std::string& model_dir,
                                                               const std::string& name) {
  auto folder = std::shared_ptr<T5Folder>(new T5Folder());
  folder->model_dir_ = model_dir;
  folder->name_ = name.empty() ? ModelFolder{model_dir, model_dir}.label() : name;
  MODELPOOL_ASSIGN_OR_RETURN(folder->files_, ReadT5Files(model_dir));
  MODELPOOL_ASSIGN_OR_RETURN(folder->checkpoint_, SafetensorsCheckpoint::Open(model_dir));
  std::vector<std::string> unused;
  if (absl::Status weights = T5Weights::Check(folder->files_.config, *folder->checkpoint_, &unused);
      !weights.ok()) {
    return absl::Status(weights.code(), absl::StrCat(model_dir, ": ", weights.message()));
  }
  WarnOfUnusedTensors(folder->name_, unused);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(model_dir);
  if (tokenizer.ok()) {
    folder->tokenizer_ = *std::move(tokenizer);
  } else if (tokenizer.status().code() != absl::StatusCode::kNotFound) {
    return tokenizer.status();
  }
  return std::shared_ptr<const T5Folder>(std::move(folder));
}

absl::StatusOr<std::shared_ptr<const SummarizerFolder>> T5Folder::Open(const std::string& model_dir,
                                                                       const std::string& name) {
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const T5Folder> folder, Read(model_dir, name));
  if (folder->tokenizer() == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(model_dir, " has no tokenizer (spiece.model or tokenizer.json)"));
  }
  return std::shared_ptr<const SummarizerFolder>(std::move(folder));
}

absl::Status T5Folder::CheckDType(DType dtype) const {
  if (dtype == DType::kFloat16) {
    return absl::InvalidArgumentError(
        "T5 does not run in float16: its activations overflow the float16 range (use bfloat16 "
        "or float32)");
  }
  return absl::OkStatus();
}

DType T5Folder::DefaultDType(const Device& device) const {
  return device.is_cuda() ? DType::kBFloat16 : DType::kFloat32;
}

int64_t T5Folder::WeightBytes(DType dtype) const {
  return T5Weights::Bytes(files_.config, ToTorchType(dtype));
}

int64_t T5Folder::InstanceBytes(DType dtype, const SummarizerLimits& limits) const {
  const T5Config& c = files_.config;
  const int64_t element = static_cast<int64_t>(c10::elementSize(ToTorchType(dtype)));
  // The largest transient tensors: the encoder's attention scores with their bias, its
  // feed-forward activations, and the float32 scores over the vocabulary of every beam.
  // Saturating: the limits come from the user.
  const int64_t tokens = SaturatingMul(limits.max_batch_size, limits.max_input_tokens);
  const int64_t workspace =
      SaturatingSum({SaturatingProduct({3, tokens, c.num_heads, limits.max_input_tokens, element}),
                     SaturatingProduct({2, tokens, c.gated ? 2 : 1, c.d_ff, element}),
                     SaturatingProduct({4, limits.max_rows(), c.vocab_size, 4})});
  return SaturatingAdd(T5Model::CacheBytes(c, ToTorchType(dtype), limits), workspace);
}

absl::StatusOr<std::shared_ptr<const T5Weights>> T5Folder::LoadWeights(c10::Device device,
                                                                       at::ScalarType dtype) const {
  return weights_.Get(
      absl::StrCat(device.str(), "/", c10::toString(dtype)),
      [&]() -> absl::StatusOr<std::shared_ptr<const T5Weights>> {
        MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const T5Weights> weights,
                                   T5Weights::Load(files_.config, *checkpoint_, device, dtype));
        // Other instances read them on their own streams.
        if (!device.is_cpu()) {
          c10::impl::VirtualGuardImpl(device.type()).getStream(device).synchronize();
        }
        return weights;
      });
}

absl::StatusOr<std::unique_ptr<SummarizationModel>> T5Folder::Load(
    const Device& device, DType dtype, const SummarizerLimits& limits) const {
  MODELPOOL_RETURN_IF_ERROR(CheckDType(dtype));
  MODELPOOL_ASSIGN_OR_RETURN(std::unique_ptr<T5SummarizationModel> model,
                             T5SummarizationModel::Load(shared_from_this(), ToTorchDevice(device),
                                                        ToTorchType(dtype), limits));
  // A GPU instance holds its workspace from now on, so that its footprint can be measured.
  if (device.is_cuda()) MODELPOOL_RETURN_IF_ERROR(model->WarmUp());
  return std::unique_ptr<SummarizationModel>(std::move(model));
}

T5SummarizationModel::T5SummarizationModel(std::shared_ptr<const T5Folder> folder,
                                           std::unique_ptr<T5Model> model,
                                           std::optional<c10::Stream> stream)
    : folder_(std::move(folder)), model_(std::move(model)), stream_(stream) {}

absl::StatusOr<std::unique_ptr<T5SummarizationModel>> T5SummarizationModel::Load(
    std::shared_ptr<const T5Folder> folder, c10::Device device, at::ScalarType dtype,
    const SummarizerLimits& limits) {
  if (limits.max_batch_size < 1 || limits.max_num_beams < 1 || limits.max_input_tokens < 1 ||
      limits.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        "T5 limits (batch, beams, input and new tokens) must be >= 1");
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
      std::unique_ptr<T5Model> model,
      OnStream(stream, absl::StrCat("loading ", folder->name(), " on ", device.str()),
               [&]() -> absl::StatusOr<std::unique_ptr<T5Model>> {
                 MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const T5Weights> weights,
                                            folder->LoadWeights(device, dtype));
                 return std::make_unique<T5Model>(folder->files().config, std::move(weights),
                                                  device, dtype, limits);
               }));
  return std::unique_ptr<T5SummarizationModel>(
      new T5SummarizationModel(std::move(folder), std::move(model), stream));
}

Device T5SummarizationModel::device() const {
  const c10::Device d = model_->device();
  return d.is_cuda() ? Device::Cuda(d.index()) : Device::Cpu();
}

absl::StatusOr<SearchOptions> T5SummarizationModel::Resolve(const GenerationOptions& o) const {
  const T5Config& config = folder_->files().config;
  const T5GenerationDefaults& g = folder_->files().generation;
  const SummarizerLimits& limits = model_->limits();
  SearchOptions s;
  s.eos_token_ids = config.eos_token_ids;
  s.pad_token_id = config.pad_token_id;
  s.decoder_start_token_id = config.decoder_start_token_id;
  // max_length and min_length count the decoder start token.
  s.max_new_tokens = o.max_new_tokens   ? *o.max_new_tokens
                     : g.max_new_tokens ? *g.max_new_tokens
                     : g.max_length     ? *g.max_length - 1
                                        : kDefaultMaxNewTokens;
  s.min_new_tokens = o.min_new_tokens   ? *o.min_new_tokens
                     : g.min_new_tokens ? *g.min_new_tokens
                     : g.min_length     ? std::max<int64_t>(0, *g.min_length - 1)
                                        : 0;
  s.num_beams = o.num_beams ? *o.num_beams : g.num_beams.value_or(1);
  s.length_penalty = o.length_penalty ? *o.length_penalty : g.length_penalty.value_or(1.0);
  s.no_repeat_ngram_size =
      o.no_repeat_ngram_size ? *o.no_repeat_ngram_size : g.no_repeat_ngram_size.value_or(0);
  if (o.early_stopping) {
    s.early_stopping = *o.early_stopping;
  } else if (g.early_stopping == "true") {
    s.early_stopping = EarlyStopping::kWhenBeamsDone;
  } else if (g.early_stopping == "never") {
    s.early_stopping = EarlyStopping::kNever;
  }

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

absl::Status T5SummarizationModel::CheckRows(absl::Span<const std::vector<int32_t>> rows) const {
  const int64_t vocab = folder_->files().config.vocab_size;
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

std::pair<at::Tensor, at::Tensor> T5SummarizationModel::Pad(
    absl::Span<const std::vector<int32_t>> rows) const {
  size_t length = 0;
  for (const std::vector<int32_t>& row : rows) length = std::max(length, row.size());
  const int64_t batch = static_cast<int64_t>(rows.size());
  at::Tensor ids = at::full({batch, static_cast<int64_t>(length)},
                            folder_->files().config.pad_token_id, at::kLong);
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

absl::StatusOr<std::vector<std::vector<int32_t>>> T5SummarizationModel::Generate(
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
          return GenerateIds(*model_, static_cast<int64_t>(rows.size()), search, model_->device());
        }));
    for (std::vector<int32_t>& row : generated) out.push_back(std::move(row));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> T5SummarizationModel::Summarize(
    absl::Span<const std::string> texts, const GenerationOptions& options) {
  const Tokenizer* tokenizer = folder_->tokenizer();
  if (tokenizer == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(folder_->name(), " has no tokenizer"));
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
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  for (const std::string& text : texts) {
    rows.push_back(tokenizer->Encode(options.prefix + text, encode));
  }
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

absl::Status T5SummarizationModel::WarmUp() {
  const SummarizerLimits& limits = model_->limits();
  const int64_t vocab = folder_->files().config.vocab_size;
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

absl::StatusOr<std::pair<at::Tensor, at::Tensor>> T5SummarizationModel::FirstStep(
    absl::Span<const int32_t> ids) {
  const std::vector<std::vector<int32_t>> rows = {std::vector<int32_t>(ids.begin(), ids.end())};
  MODELPOOL_RETURN_IF_ERROR(CheckRows(rows));
  return OnStream(stream_, "first step",
                  [&]() -> absl::StatusOr<std::pair<at::Tensor, at::Tensor>> {
                    const auto [input, mask] = Pad(rows);
                    const at::Tensor hidden = model_->Encode(input, mask);
                    model_->StartDecoding(hidden, mask, 1);
                    const at::Tensor start =
                        at::full({1}, folder_->files().config.decoder_start_token_id,
                                 at::TensorOptions().dtype(at::kLong).device(model_->device()));
                    const at::Tensor logits = model_->Step(start, 0);
                    return std::make_pair(hidden.to(at::kCPU, at::kFloat), logits.to(at::kCPU));
                  });
}

}  // namespace modelpool
