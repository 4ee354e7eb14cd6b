#ifndef MODELPOOL_LIB_MODELS_ENCODER_H_
#define MODELPOOL_LIB_MODELS_ENCODER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lib/models/formats/safetensors.h"

namespace modelpool {

// Note [Packed batches]
// An embedding batch is its rows laid end to end, with no padding: `tokens` ids in all, row r
// taking [starts[r], starts[r + 1]). Every projection is then one matrix product over exactly
// the tokens there are, and attention that knows the row boundaries (flash attention with
// cumulative sequence lengths) needs no mask. Paths without such a kernel pad rows for
// attention alone.
struct PackedRows {
  at::Tensor ids;        // [tokens] int64
  at::Tensor positions;  // [tokens] int64: each token's index within its row
  at::Tensor row_ids;    // [tokens] int64: the row of each token
  at::Tensor starts;     // [rows + 1] int64: where each row starts; the last is `tokens`
  at::Tensor lengths;    // [rows] int64
  int64_t rows = 0;
  int64_t tokens = 0;
  int64_t max_length = 0;  // the longest row
};

// What every encoder architecture tells the layers above it.
struct EncoderShape {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  // The longest row the encoder has positions for.
  int64_t max_positions = 0;
  int64_t pad_token_id = 0;
};

// Encoder
//
// An encoder's weights on one device in one compute type, and its forward pass. Immutable
// after loading: instances of a model on one device share one `Encoder`, each running it on
// its own stream. Inference only: call under `c10::InferenceMode`. Throws `c10::Error` as ATen
// does; callers convert at the API boundary.
class Encoder {
 public:
  virtual ~Encoder() = default;

  // The last hidden states of `batch` (on the encoder's device), [tokens, hidden], packed as
  // the batch is.
  virtual at::Tensor Forward(const PackedRows& batch) const = 0;

  // The kernel its attention runs on, for logs and benchmarks: "flash (varlen)", "math"...
  virtual std::string attention_kernel() const = 0;
};

// EncoderArchitecture
//
// One model folder's encoder configuration (its `config.json`), read and checked: what the
// layers above need to know, whether a checkpoint holds the weights it calls for, how large
// it is, and how to load it. Immutable; shared by every instance of the model. One
// implementation per architecture, registered by `model_type` (lib/models/registry.cc).
class EncoderArchitecture {
 public:
  virtual ~EncoderArchitecture() = default;

  virtual const EncoderShape& shape() const = 0;

  // EncoderArchitecture::Bind()
  //
  // Checks that `checkpoint` holds every tensor the configuration calls for, with its shape
  // and a float type, and remembers how the checkpoint names them (a prefix such as "bert.").
  // `NotFound` or `InvalidArgument` naming the tensor and `checkpoint_dir`. Called once, before
  // the architecture is shared.
  virtual absl::Status Bind(const SafetensorsCheckpoint& checkpoint,
                            const std::string& checkpoint_dir) = 0;

  // The tensors of the encoder's own part of `checkpoint` (which `Bind` accepted) that it does
  // not read: extra layers when config.json says fewer than the weights hold, for instance.
  // Tensors a checkpoint holds for other purposes (a pooler, a task head) are not listed.
  virtual std::vector<std::string> UnusedTensors(const SafetensorsCheckpoint& checkpoint) const = 0;

  // Numbers in the weights the encoder reads.
  virtual int64_t num_parameters() const = 0;
  // Bytes of the transient tensors of one batch of `tokens` ids, in elements of
  // `element_bytes` (the compute type).
  virtual int64_t WorkspaceBytes(int64_t tokens, int64_t element_bytes) const = 0;

  // Copies the weights from `checkpoint` (which `Bind` accepted) to `device` in `dtype`.
  // Throws `c10::Error` on a device failure.
  virtual std::shared_ptr<const Encoder> Load(const SafetensorsCheckpoint& checkpoint,
                                              c10::Device device, c10::ScalarType dtype) const = 0;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_ENCODER_H_
