#ifndef MODELPOOL_LIB_MODELS_CUDA_CAPTURE_LOCK_H_
#define MODELPOOL_LIB_MODELS_CUDA_CAPTURE_LOCK_H_

#include "absl/synchronization/mutex.h"

namespace modelpool {

// Note [CUDA graph captures and the allocator's cache]
// libtorch's caching allocator refuses to empty its cache while a stream of a device captures
// a CUDA graph: it asserts, which throws in the thread that asked. Workers capture decoder
// steps (Note [Decoder steps in a CUDA graph]) while others may free the cache (an eviction, an
// out-of-memory retry), so captures hold this lock shared and emptying the cache holds it
// exclusively. Captures are short (one step's launches), so the wait is too.
inline absl::Mutex& CudaCaptureLock() {
  static absl::Mutex* const lock = new absl::Mutex();
  return *lock;
}

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_CUDA_CAPTURE_LOCK_H_
