#ifndef MODELPOOL_POOL_LEASE_H_
#define MODELPOOL_POOL_LEASE_H_

#include <memory>
#include <utility>

namespace modelpool {

namespace pool_internal {
template <typename T>
class PoolState;
}  // namespace pool_internal

// Lease
//
// Exclusive use of one pooled instance of `T` until the lease ends: on destruction, on
// `Release()` (the instance goes back to the pool) or on `Destroy()` (the instance is
// destroyed and its slot freed). Move-only; a moved-from lease is empty and ending it does
// nothing. A lease may outlive its `ModelPool`: the pool's state lives until the last lease
// ends, and an instance returned to a pool that has shut down is destroyed.
//
// A lease is used by one thread at a time; different leases may be used and ended
// concurrently.
//
// Example:
//   absl::StatusOr<Lease<Embedder>> lease = pool->Acquire(absl::Seconds(5));
//   if (!lease.ok()) return lease.status();
//   (*lease)->Embed(texts);
//   // returned to the pool here
template <typename T>
class [[nodiscard]] Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)),
        instance_(std::move(other.instance_)),
        destroy_after_use_(other.destroy_after_use_) {}
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      Release();
      state_ = std::exchange(other.state_, nullptr);
      instance_ = std::move(other.instance_);
      destroy_after_use_ = other.destroy_after_use_;
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { Release(); }

  T* get() const { return instance_.get(); }
  T* operator->() const { return instance_.get(); }
  T& operator*() const { return *instance_; }
  explicit operator bool() const { return instance_ != nullptr; }

  // Whether ending this lease destroys the instance instead of returning it.
  bool destroy_after_use() const { return destroy_after_use_; }

  // Lease::Release()
  //
  // Returns the instance to the pool now (or destroys it, if it was acquired with
  // `destroy_after_use`). Idempotent; the lease is empty afterwards.
  void Release() noexcept { End(destroy_after_use_); }

  // Lease::Destroy()
  //
  // Destroys the instance instead of returning it, for instance after it failed in a way that
  // may have left it broken; its slot is freed for a new instance. Idempotent.
  void Destroy() noexcept { End(true); }

 private:
  friend class pool_internal::PoolState<T>;

  Lease(pool_internal::PoolState<T>* state, std::unique_ptr<T> instance, bool destroy_after_use)
      : state_(state), instance_(std::move(instance)), destroy_after_use_(destroy_after_use) {}

  void End(bool destroy) noexcept {
    if (instance_ == nullptr) return;
    std::exchange(state_, nullptr)->Release(std::move(instance_), destroy);
  }

  pool_internal::PoolState<T>* state_ = nullptr;
  std::unique_ptr<T> instance_;
  bool destroy_after_use_ = false;
};

}  // namespace modelpool

#endif  // MODELPOOL_POOL_LEASE_H_
