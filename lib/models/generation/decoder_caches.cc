#include "lib/models/generation/decoder_caches.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "ATen/ATen.h"
#include "lib/models/attention_bias.h"
#include "lib/models/flash_attention.h"
#include "lib/models/half_precision.h"
#include "lib/models/kernel_switches.h"

#ifdef MODELPOOL_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "lib/models/kernels/copy_chunks.h"
#include "lib/models/kernels/decode_attention.h"
#endif

namespace modelpool {
namespace {

// Note [Decoder attention kernels]
// A step's attention, one query per row (or the beams of a text), is a handful of small
// kernels on matrix products: two products, the scaling, the mask and the softmax, and the
// copies that lay their operands out. On CUDA with PyTorch 2, in float16 or bfloat16, with
// head sizes flash attention takes, it is one flash-attention kernel over the caches where
// they lie instead. Its variable-length form reads row b's keys from the token its cumulative
// start names and only as many as `seqused_k` says. A cache of one layer is [rows, heads,
// positions, head_dim]; seen as [tokens, heads, head_dim] with a token stride of head_dim and a
// head stride of positions * head_dim (FlashOverCache), row r's keys start at token
// r * heads * positions. So:
// - cross-attention: the beams of text b are its queries (starts b * beams), its keys the
//   first length_b positions, the encoder input being padded on the right;
// - self-attention: each row's query over positions [0, position], with seqused_k =
//   position + 1 computed on the device, so that a CUDA graph replays it at every position.
// The keys past what is used are never read, not masked: no lowest-value bias.
// Self-attention at a position held on the device (static steps, CUDA graphs) runs on a kernel
// of our own where it is built (Note [Decode attention kernel]): one query per row and head
// fills flash attention's tiles poorly, and T5 adds a relative position bias, which the kernel
// reads from its one row. Cross-attention with one beam runs on a kernel of our own too where
// it is built (Note [Split-key cross-attention]): flash attention's one block per (text, head)
// keeps too few of the keys' loads in flight. Everything else (the CPU, float32, libtorch 1.13)
// stays on matrix products. MODELPOOL_DECODER_ATTENTION=matmul turns the kernels off, to compare.
bool KernelsAllowed() { return ProcessKernelSwitches().decoder_kernels; }

bool UseFlash(const at::TensorOptions& options, int64_t head_dim) {
  return KernelsAllowed() &&
         CanFlashAttention(options.device(), options.dtype().toScalarType(), head_dim);
}

// Whether our decoder kernels run here at all: built, allowed, half precision, compute
// capability 8.0 or later.
bool UseOurKernels(const at::TensorOptions& options) {
#ifdef MODELPOOL_CUDA_KERNELS
  return KernelsAllowed() && IsHalfPrecision(options.dtype().toScalarType()) &&
         IsAmpereOrLater(options.device());
#else
  return false;
#endif
}

bool UseDecodeKernel(const at::TensorOptions& options, int64_t head_dim, int64_t positions) {
#ifdef MODELPOOL_CUDA_KERNELS
  return UseOurKernels(options) && kernels::CanDecodeAttention(head_dim, positions);
#else
  return false;
#endif
}

// Flash attention of `queries` ([query tokens, heads, head_dim]) over the keys and values of
// one layer ([rows, heads, positions, head_dim] each, contiguous), row b's queries from
// query_starts[b], its keys the first keys_used[b] positions of row b.
at::Tensor FlashOverCache(const at::Tensor& queries, const at::Tensor& keys,
                          const at::Tensor& values, const at::Tensor& query_starts,
                          int64_t max_queries, const at::Tensor& key_starts,
                          const at::Tensor& keys_used, int64_t max_keys, double scale) {
  auto as_tokens = [](const at::Tensor& cache) {
    TORCH_CHECK(cache.is_contiguous(), "decoder cache not contiguous");
    const int64_t rows = cache.size(0), heads = cache.size(1), positions = cache.size(2);
    const int64_t head_dim = cache.size(3);
    // The last token of the last row's last head ends the storage.
    return cache.as_strided({rows * heads * positions - (heads - 1) * positions, heads, head_dim},
                            {head_dim, positions * head_dim, 1}, cache.storage_offset());
  };
  return FlashAttention(queries, as_tokens(keys), as_tokens(values), query_starts, max_queries,
                        key_starts, max_keys, scale, keys_used);
}

}  // namespace

// Note [Decoder caches]
//
// Everything decoding needs is allocated per instance, for its limits, and written in place.
// - Self-attention keys and values of every decoder layer live in one tensor
//   [layers, 2, rows, heads, positions, head_dim]. Step t writes position t of the first
//   `rows` rows and attends over positions [0, t]; a beam reorder moves the rows of all layers
//   at once, of the positions written so far, or only a table of rows where the decode kernel
//   reads them (Note [Beams without moving keys]). On a GPU it holds
//   max_new_tokens positions from the start, so that the footprint the pool measures after the
//   warm-up is the real one. On the CPU, where the pool plans with the estimate (which counts
//   it whole), it starts at 64 positions and doubles when decoding reaches its end: a request
//   allowed 20,000 tokens that ends after 10 takes memory for 64 positions, not 20,000.
// - Cross-attention keys and values are computed once per batch, per text rather than per
//   beam: the beams of a text are the queries of one attention over that text's keys
//   ([batch, heads, beams, input_length] scores), so beams share them and reorders never
//   touch them.
DecoderCaches::DecoderCaches(int64_t layers, int64_t heads, int64_t head_dim,
                             const SummarizerLimits& limits, const at::TensorOptions& options)
    : heads_(heads),
      head_dim_(head_dim),
      limits_(limits),
      flash_(UseFlash(options, head_dim)),
      decode_kernel_(UseDecodeKernel(options, head_dim, limits.max_new_tokens)),
      cross_kernel_(UseOurKernels(options)) {
  self_ = at::empty({layers, 2, limits.max_rows(), heads, 0, head_dim}, options);
  Reserve(options.device().is_cpu() ? std::min<int64_t>(kFirstPositions, limits.max_new_tokens)
                                    : limits.max_new_tokens);
  cross_ = at::empty({layers, 2, limits.max_batch_size, heads, limits.max_input_tokens, head_dim},
                     options);
  positions_ = at::arange(self_.size(4), options.dtype(at::kLong));
  // On a GPU the cache holds max_new_tokens positions from the start, so these never grow.
  if (decode_kernel_)
    sources_ = at::empty({limits.max_rows(), capacity()}, options.dtype(at::kInt));
  cross_mask_buffer_ = at::empty({limits.max_batch_size * limits.max_input_tokens}, options);
  if (flash_ || cross_kernel_) {
    const at::TensorOptions ints = options.dtype(at::kInt);
    cross_lengths_buffer_ = at::empty({limits.max_batch_size}, ints);
    cross_query_starts_buffer_ = at::empty({limits.max_batch_size + 1}, ints);
    cross_key_starts_buffer_ = at::empty({limits.max_batch_size + 1}, ints);
    self_query_starts_buffer_ = at::empty({limits.max_rows() + 1}, ints);
    self_key_starts_buffer_ = at::empty({limits.max_rows() + 1}, ints);
  }
}

int64_t DecoderCaches::Bytes(int64_t layers, int64_t heads, int64_t head_dim,
                             const SummarizerLimits& limits, int64_t element_bytes) {
  const double positions =
      static_cast<double>(limits.max_batch_size) * limits.max_num_beams * limits.max_new_tokens +
      static_cast<double>(limits.max_batch_size) * limits.max_input_tokens;
  return SaturatedBytes(static_cast<double>(layers) * 2 * heads * head_dim * positions *
                        static_cast<double>(element_bytes));
}

void DecoderCaches::Reserve(int64_t positions) {
  const int64_t held = self_.size(4);
  if (positions <= held) return;
  TORCH_CHECK(!sources_.defined(), "the decoder's self-attention cache cannot grow on ",
              self_.device().str());
  const int64_t capacity =
      std::min(limits_.max_new_tokens, std::max({positions, 2 * held, kFirstPositions}));
  at::Tensor grown;
  try {
    grown = at::empty({self_.size(0), 2, limits_.max_rows(), heads_, capacity, head_dim_},
                      self_.options());
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "the decoder's self-attention cache for ", capacity, " positions (",
                limits_.max_rows(), " rows; the manager's max_new_tokens is ",
                limits_.max_new_tokens, ") does not fit on ", self_.device().str(), ": ",
                e.what_without_backtrace());
  }
  if (held > 0) grown.narrow(4, 0, held).copy_(self_);
  self_ = std::move(grown);
  positions_ = at::arange(capacity, self_.options().dtype(at::kLong));
}

void DecoderCaches::Start(const at::Tensor& attention_mask, int64_t beams) {
  batch_ = attention_mask.size(0);
  input_length_ = attention_mask.size(1);
  beams_ = beams;
  const at::TensorOptions options = self_.options();
  // Static steps attend over every position, the masked ones too: their weights are 0, and
  // 0 times a finite value is 0, so what was never written must be finite.
  self_.narrow(2, 0, batch_ * beams_).zero_();
  if (sources_.defined()) {
    const int64_t rows = batch_ * beams_;
    sources_.narrow(0, 0, rows)
        .copy_(at::arange(rows, sources_.options()).unsqueeze(1).expand({rows, capacity()}));
  }
  cross_mask_ =
      cross_mask_buffer_.narrow(0, 0, batch_ * input_length_)
          .view({batch_, 1, 1, input_length_})
          .copy_(at::where(attention_mask.logical_not().view({batch_, 1, 1, input_length_}),
                           at::scalar_tensor(LowestOf(self_.scalar_type()), options),
                           at::scalar_tensor(0.0, options)));
  if (flash_ || cross_kernel_) {
    const c10::Device device = self_.device();
    const int64_t rows = batch_ * beams_;
    cross_lengths_ = cross_lengths_buffer_.narrow(0, 0, batch_)
                         .copy_(attention_mask.sum(1, /*keepdim=*/false, at::kInt));
    cross_query_starts_ = cross_query_starts_buffer_.narrow(0, 0, batch_ + 1)
                              .copy_(EvenStarts(batch_, beams_, device));
    cross_key_starts_ = cross_key_starts_buffer_.narrow(0, 0, batch_ + 1)
                            .copy_(EvenStarts(batch_, heads_ * cross_.size(4), device));
    self_query_starts_ =
        self_query_starts_buffer_.narrow(0, 0, rows + 1).copy_(EvenStarts(rows, 1, device));
    self_key_starts_ = self_key_starts_buffer_.narrow(0, 0, rows + 1)
                           .copy_(EvenStarts(rows, heads_ * capacity(), device));
  }
}

void DecoderCaches::SetCross(int64_t layer, const at::Tensor& keys_values) {
  cross_[layer]
      .narrow(1, 0, batch_)
      .narrow(3, 0, input_length_)
      .copy_(
          keys_values.view({batch_, input_length_, 2, heads_, head_dim_}).permute({2, 0, 3, 1, 4}));
}

at::Tensor DecoderCaches::SelfAttention(int64_t layer, const at::Tensor& qkv, int64_t position,
                                        double scale, const at::Tensor& bias) const {
  const int64_t rows = batch_ * beams_;
  const at::Tensor cache = self_[layer].narrow(1, 0, rows);  // [2, rows, heads, T, head_dim]
  cache.select(3, position).copy_(qkv.narrow(1, 1, 2).transpose(0, 1));
  const at::Tensor past = SeenByRows(layer, position + 1);  // [2, rows, heads, keys, head_dim]
  at::Tensor scores = at::matmul(qkv.select(1, 0).unsqueeze(2), past[0].transpose(2, 3));
  if (scale != 1.0) scores = scores * scale;
  if (bias.defined()) scores = scores + bias;
  return at::matmul(at::softmax(scores, -1), past[1]).view({rows, heads_ * head_dim_});
}

#ifdef MODELPOOL_CUDA_KERNELS
at::Tensor DecoderCaches::DecodeAttention(const at::Tensor& queries,
                                          const kernels::DecodeKeys& keys, double scale) const {
  TORCH_CHECK(queries.stride(2) == 1 && queries.stride(1) == head_dim_,
              "decode attention: query layout");
  const int64_t rows = queries.size(0);
  at::Tensor out = at::empty({rows, heads_, head_dim_}, queries.options());
  const int error = kernels::DecodeAttention(
      HalfTypeOf(self_), queries.const_data_ptr(), queries.stride(0), keys,
      static_cast<float>(scale), out.data_ptr(), rows, heads_, head_dim_,
      at::cuda::getCurrentCUDAStream().stream(), ProcessKernelSwitches().overlapped_launches);
  TORCH_CHECK(error == 0, "the decode attention kernel failed to launch: CUDA error ", error);
  return out.view({rows, heads_ * head_dim_});
}

bool DecoderCaches::cross_kernel() const {
  // One beam only, where flash attention runs (Note [Split-key cross-attention]).
  return cross_kernel_ && (beams_ == 1 || !flash_) &&
         kernels::CanCrossAttention(batch_, beams_, heads_, head_dim_, cross_.size(4));
}

at::Tensor DecoderCaches::SplitKeyCrossAttention(int64_t layer, const at::Tensor& queries,
                                                 double scale) const {
  TORCH_CHECK(queries.dim() == 2 && queries.size(0) == batch_ * beams_ &&
                  queries.size(1) == heads_ * head_dim_ && queries.stride(1) == 1 &&
                  queries.stride(0) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(queries.const_data_ptr()) % 16 == 0 &&
                  queries.scalar_type() == cross_.scalar_type(),
              "cross attention: queries ", queries.sizes(), " of ", queries.scalar_type(),
              " do not have the caches' layout");
  const at::Tensor cross = cross_[layer];  // [2, max_batch, heads, capacity, head_dim]
  const kernels::CrossKeys keys{cross[0].const_data_ptr(), cross[1].const_data_ptr(),
                                cross_.size(4), cross_lengths_.const_data_ptr<int32_t>()};
  const int64_t rows = batch_ * beams_;
  at::Tensor out = at::empty({rows, heads_ * head_dim_}, queries.options());
  const at::Tensor workspace = at::empty(
      {kernels::CrossAttentionWorkspaceBytes(batch_, beams_, heads_, head_dim_, cross_.size(4))},
      queries.options().dtype(at::kByte));
  const int error = kernels::CrossAttention(
      HalfTypeOf(cross_), queries.const_data_ptr(), queries.stride(0), keys,
      static_cast<float>(scale), out.data_ptr(), workspace.data_ptr(), batch_, beams_, heads_,
      head_dim_, at::cuda::getCurrentCUDAStream().stream(),
      ProcessKernelSwitches().overlapped_launches);
  TORCH_CHECK(error == 0, "the cross-attention kernel failed to launch: CUDA error ", error);
  return out;
}
#endif

DecoderCaches::StepKeys DecoderCaches::KeysAt(const at::Tensor& position) const {
  StepKeys keys;
  keys.position = position;
  keys.mask = positions_.gt(position)
                  .to(self_.scalar_type())
                  .mul_(LowestOf(self_.scalar_type()))
                  .view({1, 1, 1, capacity()});
  if (flash_) keys.used = position.add(1).to(at::kInt).expand({batch_ * beams_}).contiguous();
  return keys;
}

at::Tensor DecoderCaches::SelfAttentionAt(int64_t layer, const at::Tensor& qkv,
                                          const StepKeys& keys, double scale,
                                          const at::Tensor& bias,
                                          const at::Tensor& relative_bias) const {
  const int64_t rows = batch_ * beams_;
  at::Tensor cache = self_[layer].narrow(1, 0, rows);  // [2, rows, heads, T, head_dim]
#ifdef MODELPOOL_CUDA_KERNELS
  if (decode_kernel_ && (relative_bias.defined() || !bias.defined())) {
    const at::Tensor q = qkv.select(1, 0);  // [rows, heads, head_dim]
    TORCH_CHECK(!relative_bias.defined() ||
                    (relative_bias.is_contiguous() && relative_bias.size(1) >= capacity()),
                "decode attention: relative bias layout");
    TORCH_CHECK(qkv.dim() == 4 && qkv.stride(3) == 1 && qkv.stride(2) == head_dim_ &&
                    qkv.stride(1) == heads_ * head_dim_ && qkv.scalar_type() == self_.scalar_type(),
                "decode attention: qkv ", qkv.sizes(), " is not [rows, 3, heads, head_dim]");
    kernels::DecodeKeys on{};
    // The kernel writes the step's keys and values into the caches itself.
    on.keys = cache[0].data_ptr();
    on.values = cache[1].data_ptr();
    on.new_keys = qkv.select(1, 1).const_data_ptr();
    on.new_values = qkv.select(1, 2).const_data_ptr();
    on.new_row_stride = qkv.stride(0);
    on.capacity = capacity();
    on.position = keys.position.const_data_ptr<int64_t>();
    on.sources = follows_sources() ? sources_.const_data_ptr<int32_t>() : nullptr;
    if (relative_bias.defined()) {
      on.relative_bias = relative_bias.const_data_ptr();
      on.bias_length = relative_bias.size(1);
    }
    return DecodeAttention(q, on, scale);
  }
#endif
  cache.index_copy_(3, keys.position, qkv.narrow(1, 1, 2).transpose(0, 1).unsqueeze(3));
  if (flash_ && !bias.defined()) {
    TORCH_CHECK(self_key_starts_.defined() && keys.used.defined(), "decoding has not started");
    return FlashOverCache(qkv.select(1, 0), cache[0], cache[1], self_query_starts_, 1,
                          self_key_starts_, keys.used, capacity(), scale)
        .view({rows, heads_ * head_dim_});
  }
  const at::Tensor seen = SeenByRows(layer, capacity());
  at::Tensor scores = at::matmul(qkv.select(1, 0).unsqueeze(2), seen[0].transpose(2, 3));
  if (scale != 1.0) scores = scores * scale;
  return at::matmul(at::softmax(scores + (bias.defined() ? bias : keys.mask), -1), seen[1])
      .view({rows, heads_ * head_dim_});
}

at::Tensor DecoderCaches::CrossAttention(int64_t layer, const at::Tensor& queries,
                                         double scale) const {
#ifdef MODELPOOL_CUDA_KERNELS
  if (cross_kernel()) return SplitKeyCrossAttention(layer, queries, scale);
#endif
  if (flash_) {
    const at::Tensor cross = cross_[layer].narrow(1, 0, batch_);  // [2, batch, heads, max, dim]
    return FlashOverCache(queries.view({batch_ * beams_, heads_, head_dim_}), cross[0], cross[1],
                          cross_query_starts_, beams_, cross_key_starts_, cross_lengths_,
                          cross_.size(4), scale)
        .view({batch_ * beams_, heads_ * head_dim_});
  }
  const at::Tensor cross = cross_[layer].narrow(1, 0, batch_).narrow(3, 0, input_length_);
  // The beams of a text query its keys together: [batch, heads, beams, head_dim].
  const at::Tensor q = queries.view({batch_, beams_, heads_, head_dim_}).permute({0, 2, 1, 3});
  at::Tensor scores = at::matmul(q, cross[0].transpose(2, 3));
  if (scale != 1.0) scores = scores * scale;
  return at::matmul(at::softmax(scores + cross_mask_, -1), cross[1])
      .permute({0, 2, 1, 3})
      .reshape({batch_ * beams_, heads_ * head_dim_});
}

// Note [Beams without moving keys]
// A beam search step makes row i continue from row parents[i]: the keys and values of every
// layer, positions [0, length), follow. Moved, that is the whole self-attention cache read and
// written (24.8 ms of a t5-large batch of 32 texts with 4 beams, 10% of it). Where the decode
// kernel reads the keys (decode_kernel_), nothing moves: sources_[r][t] names the row whose
// cache holds row r's position t, and a reorder gathers those int32 rows instead. Step t writes
// row r's keys into row r's own position t, which no row has read, and Start makes every
// sources_[r][t] r, which the positions not yet written keep: a reorder must not reach past
// the positions written. Matrix products over the cache (eager steps, a bias the kernel does
// not take) read it through SeenByRows. With one beam, whose rows never move, the table is
// left aside (beams are part of StepShape, so a CUDA graph never sees it change).
at::Tensor DecoderCaches::SeenByRows(int64_t layer, int64_t length) const {
  const int64_t rows = batch_ * beams_;
  const at::Tensor cache = self_[layer].narrow(1, 0, rows).narrow(3, 0, length);
  if (!follows_sources()) return cache;
  // Over (row, position) flattened, row r's position t is entry sources_[r][t] * length + t.
  const at::Tensor from = sources_.narrow(0, 0, rows).narrow(1, 0, length).to(at::kLong);
  const at::Tensor entries = from.mul(length).add_(at::arange(length, from.options())).view({-1});
  return cache.permute({1, 3, 0, 2, 4})
      .reshape({rows * length, 2, heads_, head_dim_})
      .index_select(0, entries)
      .view({rows, length, 2, heads_, head_dim_})
      .permute({2, 0, 3, 1, 4});
}

void DecoderCaches::Reorder(const at::Tensor& parents, int64_t length) {
  const int64_t rows = batch_ * beams_;
  if (follows_sources()) {  // Note [Beams without moving keys]
    const at::Tensor live = sources_.narrow(0, 0, rows).narrow(1, 0, length);
    live.copy_(live.index_select(0, parents));
    return;
  }
#ifdef MODELPOOL_CUDA_KERNELS
  if (self_.is_cuda()) {
    // Note [Chunk copies]: every (layer, key or value) is a group, every head of a row a chunk
    // of its first `length` positions. Gathered into a compact copy, then written back.
    const int64_t element = self_.element_size();
    const int64_t groups = self_.size(0) * 2, heads = self_.size(3);
    const int64_t chunk = length * head_dim_ * element;
    const kernels::ChunkStrides cache{self_.stride(1) * element, self_.stride(2) * element,
                                      self_.stride(3) * element};
    const kernels::ChunkStrides compact{rows * heads * chunk, heads * chunk, chunk};
    const at::Tensor gathered =
        at::empty({groups, rows, heads, length, head_dim_}, self_.options());
    const at::Tensor from = parents.to(at::kLong).contiguous();
    void* stream = at::cuda::getCurrentCUDAStream().stream();
    const int error =
        kernels::CopyChunks(self_.const_data_ptr(), cache, gathered.data_ptr(), compact,
                            from.const_data_ptr<int64_t>(), groups, rows, heads, chunk, stream);
    if (error == 0) {
      const int back = kernels::CopyChunks(gathered.const_data_ptr(), compact, self_.data_ptr(),
                                           cache, nullptr, groups, rows, heads, chunk, stream);
      TORCH_CHECK(back == 0, "the decoder's cache reorder failed to launch: CUDA error ", back);
      return;
    }
    TORCH_CHECK(error == -1, "the decoder's cache reorder failed to launch: CUDA error ", error);
  }
#endif
  const at::Tensor live = self_.narrow(2, 0, rows).narrow(4, 0, length);
  live.copy_(live.index_select(2, parents));
}

}  // namespace modelpool
