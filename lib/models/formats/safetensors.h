#ifndef MODELPOOL_LIB_MODELS_FORMATS_SAFETENSORS_H_
#define MODELPOOL_LIB_MODELS_FORMATS_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace modelpool {

// The element types a safetensors file may declare.
enum class SafetensorsDType {
  kBool,
  kU8,
  kI8,
  kF8E4M3,
  kF8E5M2,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64
};

// "F16", "BF16", ...: the names the format uses.
absl::string_view SafetensorsDTypeName(SafetensorsDType dtype);
int SafetensorsDTypeSize(SafetensorsDType dtype);

// One tensor's entry in the header. `begin` and `end` are byte offsets into the data section.
struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;

  int64_t num_elements() const;
};

// SafetensorsFile
//
// A `.safetensors` file, memory-mapped read-only, with its header validated up front: the
// header's size against the file, valid JSON, known dtypes, non-negative shapes whose byte
// size (shape x dtype size, overflow-checked) equals the tensor's byte range, ranges inside
// the data section and not overlapping. Any violation is `InvalidArgument` naming the file
// and the tensor; nothing past the validated ranges is ever read. Immutable: thread-safe.
class SafetensorsFile {
 public:
  // Maps and validates the file at `path`. `NotFound` if it does not exist.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  // Validates `bytes`, a whole file's contents, without copying them: the result points into
  // `bytes`, which must outlive it. `source` names it in messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(
      absl::Span<const uint8_t> bytes, std::string source);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // The tensor called `name`, or null.
  const SafetensorsTensor* Find(absl::string_view name) const;
  // Every tensor, ordered by name.
  const std::map<std::string, SafetensorsTensor, std::less<>>& tensors() const { return tensors_; }
  // The header's "__metadata__" strings.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The bytes of `tensor`, which must come from this file.
  absl::Span<const uint8_t> Data(const SafetensorsTensor& tensor) const;
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  absl::Status ParseHeader(absl::Span<const uint8_t> bytes);

  std::string path_;
  void* mapping_ = nullptr;  // from mmap, when opened from a path
  size_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;  // the data section
  uint64_t data_size_ = 0;
  std::map<std::string, SafetensorsTensor, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// SafetensorsCheckpoint
//
// The weights of a Hugging Face model folder: `model.safetensors`, or the shards that
// `model.safetensors.index.json` lists. A folder with only a pickled `pytorch_model.bin` is
// refused (`FailedPrecondition`) because unpickling can run arbitrary code. Thread-safe.
class SafetensorsCheckpoint {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(const std::string& model_dir);

  // The tensor called `name` and the file that holds it; nulls when absent.
  struct Entry {
    const SafetensorsFile* file = nullptr;
    const SafetensorsTensor* tensor = nullptr;
  };
  Entry Find(absl::string_view name) const;
  // Every tensor name, over all shards.
  std::vector<std::string> names() const;
  // How many numbered blocks the checkpoint holds under `prefix` ("encoder.layer."): one more
  // than the highest N of a tensor named `prefix` N "." ..., or 0 when there is none. Lets a
  // reader check a layer count from a config before it builds anything per layer.
  int64_t NumBlocks(absl::string_view prefix) const;
  // Bytes of all tensors' data.
  uint64_t total_bytes() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_FORMATS_SAFETENSORS_H_
