#ifndef MODELPOOL_LIB_MODELS_SUMMARIZER_FOLDER_H_
#define MODELPOOL_LIB_MODELS_SUMMARIZER_FOLDER_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"
#include "modelpool/models/summarization_model.h"

namespace modelpool {

// The shapes a summarization instance is sized for: its caches are allocated for them.
struct SummarizerLimits {
  int64_t max_batch_size = 32;  // texts per batch
  int64_t max_num_beams = 4;
  int64_t max_input_tokens = 512;
  int64_t max_new_tokens = 256;

  int64_t max_rows() const { return max_batch_size * max_num_beams; }
};

// `bytes` as an int64, or the largest int64 beyond it: footprints computed in floating point
// from a user's limits cannot overflow.
inline int64_t SaturatedBytes(double bytes) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<int64_t>::max());
  return bytes >= kMax ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(bytes);
}

// SummarizerFolder
//
// An encoder-decoder model folder of one architecture, read and checked once (its
// configuration, generation defaults, weights' headers and tokenizer): everything a manager
// needs to size, load and warm up instances, without knowing the architecture. Immutable and
// shared by every instance; thread-safe. One implementation per architecture, opened by
// `model_type` (lib/models/registry.cc).
class SummarizerFolder {
 public:
  virtual ~SummarizerFolder() = default;

  virtual const std::string& model_dir() const = 0;
  // What messages call the model: the name it was asked for by, or the folder's last component.
  virtual const std::string& name() const = 0;

  // `InvalidArgument` saying why when the architecture cannot compute in `dtype`.
  virtual absl::Status CheckDType(DType dtype) const = 0;
  // The compute type on `device` when none is asked for.
  virtual DType DefaultDType(const Device& device) const = 0;

  // Bytes of the weights on a device, shared by every instance there.
  virtual int64_t WeightBytes(DType dtype) const = 0;
  // Bytes one instance adds: its caches and the workspace of its largest batch.
  virtual int64_t InstanceBytes(DType dtype, const SummarizerLimits& limits) const = 0;

  // SummarizerFolder::Load()
  //
  // An instance on `device` computing in `dtype`, sized for `limits`, sharing the weights
  // with the folder's other instances on that device. On a GPU it has generated once at its
  // limits before returning, so that it holds the memory it will use.
  virtual absl::StatusOr<std::unique_ptr<SummarizationModel>> Load(
      const Device& device, DType dtype, const SummarizerLimits& limits) const = 0;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_SUMMARIZER_FOLDER_H_
