#include "modelpool/models/embedding_model.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/embedding_model_state.h"
#include "lib/models/torch_status.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace modelpool {
namespace {

// One vector per row of `hidden` ([tokens, hidden], packed as `batch`) as
// sentence-transformers' Pooling computes it, in float32. The first `skip` tokens of every
// row stay out of it, as sentence-transformers does with a prompt when `include_prompt` is
// false. `lengths_after_skip` ([rows] float32) counts the tokens that take part.
at::Tensor Pool(const at::Tensor& hidden, const PackedRows& batch, const PoolingConfig& pooling,
                int64_t skip, const at::Tensor& lengths_after_skip) {
  const int64_t rows = batch.rows, width = hidden.size(1);
  at::Tensor pooled_rows;  // [tokens]: the row of each token that takes part (skip or not)
  at::Tensor pooled_hidden;
  auto pooled = [&] {
    if (!pooled_rows.defined()) {
      if (skip == 0) {
        pooled_rows = batch.row_ids;
        pooled_hidden = hidden;
      } else {
        const at::Tensor keep = batch.positions.ge(skip).nonzero().squeeze(1);
        pooled_rows = batch.row_ids.index_select(0, keep);
        pooled_hidden = hidden.index_select(0, keep);
      }
    }
  };
  std::vector<at::Tensor> parts;
  const at::TensorOptions floats = hidden.options().dtype(at::kFloat);
  if (pooling.cls) {
    parts.push_back(hidden.index_select(0, batch.starts.narrow(0, 0, rows)).to(at::kFloat));
  }
  if (pooling.max) {
    pooled();
    parts.push_back(at::full({rows, width}, -std::numeric_limits<float>::infinity(), floats)
                        .scatter_reduce_(0, pooled_rows.unsqueeze(1).expand({-1, width}),
                                         pooled_hidden.to(at::kFloat), "amax",
                                         /*include_self=*/true));
  }
  if (pooling.mean || pooling.mean_sqrt_len) {
    pooled();
    const at::Tensor sum =
        at::zeros({rows, width}, floats).index_add_(0, pooled_rows, pooled_hidden.to(at::kFloat));
    const at::Tensor count = lengths_after_skip.unsqueeze(1).clamp_min(1e-9);
    if (pooling.mean) parts.push_back(sum.div(count));
    if (pooling.mean_sqrt_len) parts.push_back(sum.div(count.sqrt()));
  }
  if (pooling.last_token) {
    parts.push_back(hidden.index_select(0, batch.starts.narrow(0, 1, rows).sub(1)).to(at::kFloat));
  }
  return parts.size() == 1 ? parts.front() : at::cat(parts, 1);
}

// Note [Embedding batches]
// A call embeds many texts of mixed lengths. Rows are sorted longest first and cut into
// packed batches of at most `max_batch_tokens` ids (Note [Packed batches] in encoder.h), so
// padding costs nothing where attention runs on the packed rows, and stays small where a
// kernel pads them (rows of nearly equal length share a batch). Each batch is one pinned host
// buffer copied to the device without waiting, and its pooled vectors are written straight
// to their input positions in one [texts, dim] device tensor. Nothing waits on the device
// until that tensor is copied to the host at the end, so the host prepares batch i+1 while
// the device runs batch i. The first batch is the longest rows, so a batch that does not fit
// in memory fails at once.

// The pooled (and, with `normalize`, unit-length) float32 vectors of `ids`, in input order, as
// a [rows, dimension] tensor on the host. Throws as ATen does.
at::Tensor EmbedInBatches(const Encoder& encoder, const EmbeddingModelFiles& files,
                          c10::Device device, absl::Span<const std::vector<int32_t>> ids,
                          int64_t budget, bool normalize, int64_t skip_prefix_tokens,
                          const std::function<void(int64_t, int64_t)>& on_progress) {
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  const at::TensorOptions host_options =
      at::TensorOptions().dtype(at::kLong).pinned_memory(device.is_cuda());
  at::Tensor out =
      at::empty({n, files.dimension()}, at::TensorOptions().device(device).dtype(at::kFloat));
  for (int64_t begin = 0; begin < n;) {
    int64_t rows = 0, tokens = 0;
    while (
        begin + rows < n &&
        (rows == 0 || tokens + static_cast<int64_t>(ids[order[begin + rows]].size()) <= budget)) {
      tokens += static_cast<int64_t>(ids[order[begin + rows]].size());
      ++rows;
    }
    // One buffer, one copy: ids, positions and row of every token, then each row's start
    // (and the end), length after the skipped prefix, and output row.
    at::Tensor host = at::empty({3 * tokens + 3 * rows + 1}, host_options);
    int64_t* token_ids = host.data_ptr<int64_t>();
    int64_t* positions = token_ids + tokens;
    int64_t* row_ids = positions + tokens;
    int64_t* starts = row_ids + tokens;
    int64_t* pooled_lengths = starts + rows + 1;
    int64_t* places = pooled_lengths + rows;
    int64_t at_token = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<int32_t>& row = ids[order[begin + r]];
      const int64_t length = static_cast<int64_t>(row.size());
      starts[r] = at_token;
      for (int64_t i = 0; i < length; ++i) {
        token_ids[at_token + i] = row[i];
        positions[at_token + i] = i;
        row_ids[at_token + i] = r;
      }
      at_token += length;
      pooled_lengths[r] = std::max<int64_t>(0, length - skip_prefix_tokens);
      places[r] = order[begin + r];
    }
    starts[rows] = tokens;
    const at::Tensor buffer = host.to(device, at::kLong, /*non_blocking=*/true);
    PackedRows batch;
    batch.ids = buffer.narrow(0, 0, tokens);
    batch.positions = buffer.narrow(0, tokens, tokens);
    batch.row_ids = buffer.narrow(0, 2 * tokens, tokens);
    batch.starts = buffer.narrow(0, 3 * tokens, rows + 1);
    batch.lengths = batch.starts.narrow(0, 1, rows).sub(batch.starts.narrow(0, 0, rows));
    batch.rows = rows;
    batch.tokens = tokens;
    batch.max_length = static_cast<int64_t>(ids[order[begin]].size());
    const at::Tensor pooled_length = buffer.narrow(0, 3 * tokens + rows + 1, rows).to(at::kFloat);
    const at::Tensor places_on_device = buffer.narrow(0, 3 * tokens + 2 * rows + 1, rows);
    const at::Tensor hidden = encoder.Forward(batch);
    out.index_copy_(0, places_on_device,
                    Pool(hidden, batch, files.pooling, skip_prefix_tokens, pooled_length));
    begin += rows;
    if (on_progress) on_progress(begin, n);
  }
  if (normalize) out.div_(out.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12));
  return out.to(at::kCPU).contiguous();
}

// NaN or infinite vectors (from NaN or infinite weights, or an overflow in float16) are an
// error, not data: `Internal` naming the model and the first rows affected.
absl::Status CheckFinite(const at::Tensor& vectors, const std::string& name) {
  const at::Tensor bad_rows = vectors.isfinite().all(1).logical_not().nonzero().view(-1);
  const int64_t bad = bad_rows.numel();
  if (bad == 0) return absl::OkStatus();
  constexpr int64_t kShown = 5;
  std::string rows;
  for (int64_t i = 0; i < std::min(bad, kShown); ++i) {
    absl::StrAppend(&rows, i > 0 ? ", " : "", bad_rows[i].item<int64_t>());
  }
  if (bad > kShown) absl::StrAppend(&rows, " and ", bad - kShown, " more");
  return absl::InternalError(absl::StrCat(
      name, ": the vectors of ", bad, " of ", vectors.size(0), " texts (", rows,
      ") hold NaN or infinity: the weights do, or the compute type overflowed (float32 may help)"));
}

}  // namespace

absl::Span<const float> Embeddings::operator[](int64_t i) const {
  return absl::MakeConstSpan(tensor.data_ptr<float>() + i * dimension(),
                             static_cast<size_t>(dimension()));
}

std::vector<std::vector<float>> Embeddings::vectors() const {
  std::vector<std::vector<float>> vectors;
  vectors.reserve(size());
  for (int64_t i = 0; i < size(); ++i) {
    const absl::Span<const float> row = (*this)[i];
    vectors.emplace_back(row.begin(), row.end());
  }
  return vectors;
}

EmbeddingModel::EmbeddingModel(std::unique_ptr<State> state) : state_(std::move(state)) {}
EmbeddingModel::~EmbeddingModel() = default;

int64_t EmbeddingModel::dimension() const { return state_->files->dimension(); }
int64_t EmbeddingModel::max_seq_length() const { return state_->files->max_seq_length; }
int64_t EmbeddingModel::max_batch_tokens() const { return state_->max_batch_tokens; }
const Device& EmbeddingModel::device() const { return state_->device; }
DType EmbeddingModel::dtype() const { return state_->dtype; }

int64_t EncoderWeightBytes(const EmbeddingModelFiles& files, DType dtype) {
  return files.encoder->num_parameters() *
         static_cast<int64_t>(c10::elementSize(ToTorchType(dtype)));
}

int64_t EmbeddingWorkspaceBytes(const EmbeddingModelFiles& files, DType dtype,
                                int64_t max_batch_tokens) {
  return files.encoder->WorkspaceBytes(max_batch_tokens,
                                       static_cast<int64_t>(c10::elementSize(ToTorchType(dtype))));
}

absl::StatusOr<std::unique_ptr<EmbeddingModel>> LoadEmbeddingModel(
    std::shared_ptr<const EmbeddingModelFiles> files, std::shared_ptr<const Tokenizer> tokenizer,
    const Device& device, DType dtype, int64_t max_batch_tokens) {
  using State = EmbeddingModel::State;
  if (files == nullptr) return absl::InvalidArgumentError("LoadEmbeddingModel: no model files");
  MODELPOOL_RETURN_IF_ERROR(CheckMaxBatchTokens(*files, max_batch_tokens));
#ifndef MODELPOOL_TORCH_CUDA
  if (device.is_cuda()) {
    return absl::FailedPreconditionError(absl::StrCat(
        files->name, ": cannot load on ", device.ToString(), ": libtorch here has no CUDA"));
  }
#endif
  auto state = std::make_unique<State>();
  state->files = std::move(files);
  state->tokenizer = std::move(tokenizer);
  state->device = device;
  // CPU kernels for float16 matrix products are missing or slow; bfloat16 has them.
  state->dtype = !device.is_cuda() && dtype == DType::kFloat16 ? DType::kFloat32 : dtype;
  state->max_batch_tokens = max_batch_tokens;
  const std::string what = absl::StrCat("loading ", state->files->name, " on ", device.ToString());
  return CallTorch(what, [&]() -> absl::StatusOr<std::unique_ptr<EmbeddingModel>> {
    c10::InferenceMode inference;
#ifdef MODELPOOL_TORCH_CUDA
    std::optional<c10::cuda::CUDAGuard> device_guard;
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
    if (device.is_cuda()) {
      device_guard.emplace(static_cast<c10::DeviceIndex>(device.index));
      state->stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false,
                                                   static_cast<c10::DeviceIndex>(device.index));
      stream_guard.emplace(*state->stream);
    }
#endif
    MODELPOOL_ASSIGN_OR_RETURN(
        state->encoder,
        state->files->LoadEncoder(ToTorchDevice(device), ToTorchType(state->dtype)));
    Log(LogSeverity::kInfo,
        absl::StrCat(state->files->name, " on ", device.ToString(), " in ", DTypeName(state->dtype),
                     ": attention ", state->encoder->attention_kernel()));
    auto model = std::unique_ptr<EmbeddingModel>(new EmbeddingModel(std::move(state)));
    if (device.is_cuda()) {
      // A full batch of the longest rows (one a token short, so the masked path runs too)
      // leaves the caching allocator holding the workspace every later batch fits in.
      const int64_t length = model->max_seq_length();
      const EncoderShape& files_shape = model->state_->files->encoder->shape();
      std::vector<std::vector<int32_t>> rows(
          max_batch_tokens / length,
          std::vector<int32_t>(length, static_cast<int32_t>(files_shape.pad_token_id)));
      if (rows.size() > 1) rows.back().pop_back();
      MODELPOOL_RETURN_IF_ERROR(model->EmbedEncoded(rows, {}, 0).status());
    }
    return model;
  });
}

absl::StatusOr<Embeddings> EmbeddingModel::EmbedIds(absl::Span<const std::vector<int32_t>> ids,
                                                    const EmbedOptions& options) {
  if (!options.prompt.empty()) {
    return absl::InvalidArgumentError(
        "EmbedIds: a prompt applies to texts; put its ids in the rows");
  }
  return EmbedEncoded(ids, options, 0);
}

absl::StatusOr<Embeddings> EmbeddingModel::EmbedEncoded(absl::Span<const std::vector<int32_t>> ids,
                                                        const EmbedOptions& options,
                                                        int64_t skip_prefix_tokens) {
  const State& s = *state_;
  const EmbeddingModelFiles& files = *s.files;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t vocab_size = files.encoder->shape().vocab_size;
  if (options.max_batch_tokens < 0 || options.max_batch_tokens > s.max_batch_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.name, ": max_batch_tokens ", options.max_batch_tokens,
                     " is outside 0 (the instance's limit) to the ", s.max_batch_tokens,
                     " its memory was planned for"));
  }
  Embeddings result;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int32_t>& row = ids[i];
    if (row.empty()) return absl::InvalidArgumentError(absl::StrCat("row ", i, " has no ids"));
    if (static_cast<int64_t>(row.size()) > files.max_seq_length) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row ", i, " has ", row.size(), " ids; the model takes at most ", files.max_seq_length));
    }
    for (const int32_t id : row) {
      // An id outside the embedding table would fault on the device, so it is caught here.
      if (id < 0 || id >= vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", i, ": id ", id, " is outside the vocabulary of ", vocab_size));
      }
    }
    result.num_tokens += static_cast<int64_t>(row.size());
    result.row_tokens.push_back(static_cast<int64_t>(row.size()));
  }
  const int64_t budget =
      options.max_batch_tokens > 0 ? options.max_batch_tokens : s.max_batch_tokens;
  absl::StatusOr<at::Tensor> vectors = CallTorch(
      absl::StrCat(files.name, " on ", s.device.ToString()), [&]() -> absl::StatusOr<at::Tensor> {
        c10::InferenceMode inference;
#ifdef MODELPOOL_TORCH_CUDA
        std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
        if (s.stream.has_value()) stream_guard.emplace(*s.stream);
#endif
        return EmbedInBatches(*s.encoder, files, ToTorchDevice(s.device), ids, budget,
                              options.normalize.value_or(files.normalize), skip_prefix_tokens,
                              options.on_progress);
      });
  if (!vectors.ok()) return vectors.status();
  result.tensor = *std::move(vectors);
  MODELPOOL_RETURN_IF_ERROR(CheckFinite(result.tensor, files.name));
  return result;
}

}  // namespace modelpool
