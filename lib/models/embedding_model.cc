#include "modelpool/models/embedding_model.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/models/embedding_model_state.h"
#include "lib/models/torch_status.h"
#include "modelpool/base/status.h"

#ifdef MODELPOOL_TORCH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace modelpool {
namespace {

c10::ScalarType TorchType(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return c10::ScalarType::Half;
    case DType::kBFloat16:
      return c10::ScalarType::BFloat16;
    case DType::kFloat32:
      return c10::ScalarType::Float;
  }
  return c10::ScalarType::Float;
}

c10::Device TorchDevice(const Device& device) {
  return device.is_cuda()
             ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device.index))
             : c10::Device(c10::DeviceType::CPU);
}

// One vector per row from `hidden` ([batch, length, hidden]) as sentence-transformers' Pooling
// computes it, in float32. The first `skip` tokens of every row stay out of it, as
// sentence-transformers does with a prompt when `include_prompt` is false.
at::Tensor Pool(const at::Tensor& hidden, const at::Tensor& lengths, const PoolingConfig& pooling,
                int64_t skip) {
  const int64_t batch = hidden.size(0), length = hidden.size(1);
  at::Tensor pooled_tokens;  // [batch, length] bool: tokens that take part
  auto pooled = [&]() -> const at::Tensor& {
    if (!pooled_tokens.defined()) {
      const at::Tensor positions = at::arange(length, lengths.options()).unsqueeze(0);
      pooled_tokens = positions.lt(lengths.unsqueeze(1));
      if (skip > 0) pooled_tokens.logical_and_(positions.ge(skip));
    }
    return pooled_tokens;
  };
  std::vector<at::Tensor> parts;
  if (pooling.cls) parts.push_back(hidden.select(1, 0).to(at::kFloat));
  if (pooling.max) {
    parts.push_back(hidden
                        .masked_fill(pooled().logical_not().unsqueeze(2),
                                     -std::numeric_limits<float>::infinity())
                        .amax(1)
                        .to(at::kFloat));
  }
  if (pooling.mean || pooling.mean_sqrt_len) {
    // One batched GEMM sums each row's tokens.
    const at::Tensor sum =
        at::bmm(pooled().to(hidden.scalar_type()).unsqueeze(1), hidden).squeeze(1).to(at::kFloat);
    const at::Tensor count = pooled().sum(1, /*keepdim=*/true).to(at::kFloat).clamp_min(1e-9);
    if (pooling.mean) parts.push_back(sum.div(count));
    if (pooling.mean_sqrt_len) parts.push_back(sum.div(count.sqrt()));
  }
  if (pooling.last_token) {
    const at::Tensor last = lengths.sub(1).view({batch, 1, 1}).expand({batch, 1, hidden.size(2)});
    parts.push_back(hidden.gather(1, last).squeeze(1).to(at::kFloat));
  }
  return parts.size() == 1 ? parts.front() : at::cat(parts, 1);
}

// Note [Embedding batches]
// A call embeds many texts of mixed lengths. Rows are sorted longest first and cut into
// batches of at most `max_batch_tokens` ids counting padding (rows x the batch's longest row),
// so a batch holds rows of nearly equal length and padding stays small without unpadding
// kernels; a batch whose rows are all equally long runs attention without a mask. Each batch
// is one pinned host buffer (ids, lengths, output rows) copied to the device without waiting,
// and its pooled vectors are written straight to their input positions in one [texts, dim]
// device tensor. Nothing waits on the device until that tensor is copied to the host at the
// end, so the host prepares batch i+1 while the device runs batch i. The first batch is the
// longest, so a batch that does not fit in memory fails at once.

// The pooled (and, with `normalize`, unit-length) float32 vectors of `ids`, in input order, as
// a [rows, dimension] tensor on the host. Throws as ATen does.
at::Tensor EmbedInBatches(const BertEncoder& encoder, const EmbeddingModelFiles& files,
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
    const int64_t length = static_cast<int64_t>(ids[order[begin]].size());
    const int64_t rows = std::min(n - begin, std::max<int64_t>(1, budget / length));
    // One buffer, one copy: the padded ids, then each row's length, then its output row.
    at::Tensor host = at::empty({rows * length + 2 * rows}, host_options);
    int64_t* data = host.data_ptr<int64_t>();
    std::fill(data, data + rows * length, files.config.pad_token_id);
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<int32_t>& row = ids[order[begin + r]];
      std::copy(row.begin(), row.end(), data + r * length);
      data[rows * length + r] = static_cast<int64_t>(row.size());
      data[rows * length + rows + r] = order[begin + r];
    }
    const at::Tensor buffer = host.to(device, at::kLong, /*non_blocking=*/true);
    const at::Tensor batch_ids = buffer.narrow(0, 0, rows * length).view({rows, length});
    const at::Tensor lengths = buffer.narrow(0, rows * length, rows);
    const at::Tensor places = buffer.narrow(0, rows * length + rows, rows);
    const bool padded = static_cast<int64_t>(ids[order[begin + rows - 1]].size()) != length;
    const at::Tensor hidden = encoder.Forward(batch_ids, lengths, padded);
    out.index_copy_(0, places, Pool(hidden, lengths, files.pooling, skip_prefix_tokens));
    begin += rows;
    if (on_progress) on_progress(begin, n);
  }
  if (normalize) out.div_(out.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12));
  return out.to(at::kCPU).contiguous();
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

absl::StatusOr<std::unique_ptr<EmbeddingModel>> EmbeddingModel::Load(
    std::shared_ptr<const EmbeddingModelFiles> files, std::shared_ptr<const Tokenizer> tokenizer,
    const Device& device, DType dtype, int64_t max_batch_tokens) {
  if (files == nullptr) return absl::InvalidArgumentError("EmbeddingModel::Load: no model files");
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
    state->encoder = BertEncoder::Load(*state->files, TorchDevice(device), TorchType(state->dtype));
    auto model = std::unique_ptr<EmbeddingModel>(new EmbeddingModel(std::move(state)));
    if (device.is_cuda()) {
      // A full batch of the longest rows (one a token short, so the masked path runs too)
      // leaves the caching allocator holding the workspace every later batch fits in.
      const int64_t length = model->max_seq_length();
      std::vector<std::vector<int32_t>> rows(
          max_batch_tokens / length,
          std::vector<int32_t>(length,
                               static_cast<int32_t>(model->state_->files->config.pad_token_id)));
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
      if (id < 0 || id >= files.config.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "row ", i, ": id ", id, " is outside the vocabulary of ", files.config.vocab_size));
      }
    }
    result.num_tokens += static_cast<int64_t>(row.size());
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
        return EmbedInBatches(*s.encoder, files, TorchDevice(s.device), ids, budget,
                              options.normalize.value_or(files.normalize), skip_prefix_tokens,
                              options.on_progress);
      });
  if (!vectors.ok()) return vectors.status();
  result.tensor = *std::move(vectors);
  return result;
}

}  // namespace modelpool
