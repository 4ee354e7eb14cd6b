#ifndef MODELPOOL_LIB_MODELS_SHARED_PER_DEVICE_H_
#define MODELPOOL_LIB_MODELS_SHARED_PER_DEVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "modelpool/base/internal/mutex.h"

namespace modelpool {

// SharedPerDevice
//
// One immutable `T` per key (a device and a compute type), made on first use and shared by
// everyone who asks while any of them holds it: the weights of a model, which every instance
// on a device reads and none writes. When the last holder lets go the value is freed, and the
// next `Get` makes it again. Thread-safe; `make` runs without the cache's lock, and two
// threads asking for one key at once get one value, made once.
template <typename T>
class SharedPerDevice {
 public:
  // The value for `key`, made by `make` unless a holder keeps one alive. When `make` fails
  // (or throws), nothing is kept and the next `Get` tries again.
  absl::StatusOr<std::shared_ptr<const T>> Get(
      const std::string& key,
      const std::function<absl::StatusOr<std::shared_ptr<const T>>()>& make) {
    std::shared_ptr<Slot> slot;
    {
      MutexLock lock(&mu_);
      std::shared_ptr<Slot>& entry = slots_[key];
      if (entry == nullptr) entry = std::make_shared<Slot>();
      slot = entry;
    }
    // Makers of other keys go on; a second maker of this key waits for the first.
    MutexLock lock(&slot->mu);
    if (std::shared_ptr<const T> value = slot->value.lock()) return value;
    absl::StatusOr<std::shared_ptr<const T>> value = make();
    if (value.ok()) slot->value = *value;
    return value;
  }

 private:
  struct Slot {
    Mutex mu;
    std::weak_ptr<const T> value ABSL_GUARDED_BY(mu);
  };

  Mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace modelpool

#endif  // MODELPOOL_LIB_MODELS_SHARED_PER_DEVICE_H_
