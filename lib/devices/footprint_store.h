#ifndef MODELPOOL_LIB_DEVICES_FOOTPRINT_STORE_H_
#define MODELPOOL_LIB_DEVICES_FOOTPRINT_STORE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelpool::devices_internal {

// What loads of one model (with one variant, on one device kind) measured.
struct MeasuredFootprint {
  std::string model;
  std::string variant;
  std::string device_kind;           // "cuda" or "cpu"
  int64_t first_instance_bytes = 0;  // shared + instance, 0 until measured
  int64_t instance_bytes = 0;        // a further instance alone, 0 until measured
};

// Keyed by `FootprintKey()`.
using MeasuredFootprints = std::map<std::string, MeasuredFootprint>;

// "bert-large|float16|cuda".
std::string FootprintKey(const std::string& model, const std::string& variant,
                         const std::string& device_kind);

// Reads the footprint file at `path`: a missing file is an empty table; a file that is not one
// (too large, not JSON, a field of the wrong type or out of range) is `InvalidArgument` naming
// the file and the field.
absl::StatusOr<MeasuredFootprints> ReadFootprints(const std::string& path);

// Writes `footprints` to `path` through a temporary file in the same folder, renamed over it, so
// that a reader never sees half a file.
absl::Status WriteFootprints(const std::string& path, const MeasuredFootprints& footprints);

}  // namespace modelpool::devices_internal

#endif  // MODELPOOL_LIB_DEVICES_FOOTPRINT_STORE_H_
