#include "modelpool/devices/memory_governor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lib/devices/memory_governor_impl.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {

using devices_internal::MeasuredFootprints;
using devices_internal::Times;

namespace {

MemoryFootprint Scaled(MemoryFootprint footprint, double factor) {
  return {Times(std::max<int64_t>(0, footprint.shared_bytes), factor),
          Times(std::max<int64_t>(1, footprint.instance_bytes), factor)};
}

}  // namespace

// MemoryGovernor

MemoryGovernor::MemoryGovernor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemoryGovernor::~MemoryGovernor() = default;

absl::StatusOr<std::shared_ptr<MemoryGovernor>> MemoryGovernor::Create(Options options) {
  MODELPOOL_RETURN_IF_ERROR(options.settings.Validate());
  if (!options.inventory) options.inventory = DeviceInventory::System();
  MeasuredFootprints measured;
  if (!options.settings.footprint_file.empty()) {
    absl::StatusOr<MeasuredFootprints> read =
        devices_internal::ReadFootprints(options.settings.footprint_file);
    if (read.ok()) {
      measured = *std::move(read);
    } else {
      Log(LogSeverity::kWarning,
          absl::StrCat("ignoring the footprint file: ", read.status().message()));
    }
  }
  return std::shared_ptr<MemoryGovernor>(
      new MemoryGovernor(std::make_shared<Impl>(std::move(options), std::move(measured))));
}

absl::StatusOr<std::shared_ptr<MemoryGovernor>> MemoryGovernor::Shared(
    const std::shared_ptr<DeviceInventory>& inventory, const Settings& settings) {
  static Mutex* const mu = new Mutex();
  static auto* const governors =
      new std::vector<std::pair<const DeviceInventory*, std::weak_ptr<MemoryGovernor>>>();
  MutexLock lock(mu);
  governors->erase(std::remove_if(governors->begin(), governors->end(),
                                  [](const auto& entry) { return entry.second.expired(); }),
                   governors->end());
  for (const auto& [key, governor] : *governors) {
    if (key != inventory.get()) continue;
    std::shared_ptr<MemoryGovernor> shared = governor.lock();
    if (shared == nullptr) continue;
    const Settings& made = shared->settings();
    if (made.memory_threshold != settings.memory_threshold ||
        made.vram_safety_margin_bytes != settings.vram_safety_margin_bytes ||
        made.gpu_memory_budget_bytes != settings.gpu_memory_budget_bytes ||
        made.cpu_memory_budget_bytes != settings.cpu_memory_budget_bytes ||
        made.footprint_estimate_factor != settings.footprint_estimate_factor ||
        made.footprint_file != settings.footprint_file) {
      Log(LogSeverity::kInfo,
          "the memory budgets of these devices were set by the first manager or worker pool "
          "made on them; later memory settings are not applied");
    }
    return shared;
  }
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<MemoryGovernor> governor,
                             Create({.settings = settings, .inventory = inventory}));
  governors->emplace_back(inventory.get(), governor);
  return governor;
}

std::unique_ptr<MemoryGovernor::Account> MemoryGovernor::Register(AccountOptions options) {
  auto state = std::make_shared<Account::State>();
  state->governor = impl_;
  state->model = options.model;
  const double factor = impl_->options().settings.footprint_estimate_factor;
  const Device gpu = Device::Cuda(0), cpu = Device::Cpu();
  const MemoryFootprint none{0, 1};
  state->estimate_gpu = Scaled(options.estimate ? options.estimate(gpu) : none, factor);
  state->estimate_cpu = Scaled(options.estimate ? options.estimate(cpu) : none, factor);
  state->variant_gpu = options.variant ? options.variant(gpu) : "";
  state->variant_cpu = options.variant ? options.variant(cpu) : "";
  impl_->Open(state, std::move(options.owner));
  return std::unique_ptr<Account>(new Account(std::move(state)));
}

absl::StatusOr<MemoryGovernor::Reservation> MemoryGovernor::Reserve(Account& account,
                                                                    const Device& device,
                                                                    const ReserveOptions& options) {
  MODELPOOL_ASSIGN_OR_RETURN(const Impl::Reserved reserved,
                             impl_->Reserve(account.state_, device, options));
  Reservation reservation;
  reservation.account_ = account.state_;
  reservation.device_ = device;
  reservation.bytes_ = reserved.bytes;
  reservation.first_on_device_ = reserved.first_on_device;
  reservation.device_free_before_ = reserved.device_free_before;
  return reservation;
}

int MemoryGovernor::Unload(Account& account, const Device& device, int count) {
  return impl_->Unload(*account.state_, device, count);
}

int64_t MemoryGovernor::NextInstanceBytes(const Account& account, const Device& device) const {
  return impl_->NextInstanceBytes(*account.state_, device);
}
MemoryFootprint MemoryGovernor::FootprintOf(const Account& account, const Device& device) const {
  return impl_->Footprint(*account.state_, device);
}
bool MemoryGovernor::Measured(const Account& account) const {
  return impl_->Measured(*account.state_);
}
int64_t MemoryGovernor::BudgetBytes(const Device& device) const { return impl_->Budget(device); }
int64_t MemoryGovernor::RoomBytes(const Device& device) const { return impl_->Room(device); }
int64_t MemoryGovernor::CapacityBytes(const Device& device) const {
  return impl_->Capacity(device);
}
std::string MemoryGovernor::Describe(const Device& device) const { return impl_->Describe(device); }
std::vector<DeviceMemoryStats> MemoryGovernor::Stats() const { return impl_->Stats(); }
void MemoryGovernor::AddListener(Listener* listener) { impl_->listeners().Add(listener); }
void MemoryGovernor::RemoveListener(Listener* listener) { impl_->listeners().Remove(listener); }
const Settings& MemoryGovernor::settings() const { return impl_->options().settings; }
Clock& MemoryGovernor::clock() const { return impl_->clock(); }

double MemoryGovernor::LruWeightedScore(const EvictionCandidate& candidate, absl::Time now) {
  const double idle_seconds = candidate.last_used == absl::InfinitePast()
                                  ? 1e9
                                  : std::max(0.0, absl::ToDoubleSeconds(now - candidate.last_used));
  return idle_seconds / (1.0 + candidate.recent_uses);
}

// MemoryGovernor::Account

MemoryGovernor::Account::~Account() { state_->governor->Detach(*state_); }
const std::string& MemoryGovernor::Account::model() const { return state_->model; }
const void* MemoryGovernor::Account::id() const { return state_.get(); }
void MemoryGovernor::Account::Touch(const Device& device) {
  state_->governor->Touch(*state_, device);
}
int MemoryGovernor::Account::Instances(const Device& device) const {
  return state_->governor->Instances(*state_, device);
}
uint64_t MemoryGovernor::Account::Evictions() const { return state_->governor->Evictions(*state_); }

// MemoryGovernor::InstanceMemory

MemoryGovernor::InstanceMemory::InstanceMemory(InstanceMemory&& other) noexcept
    : account_(std::move(other.account_)), device_(other.device_), bytes_(other.bytes_) {}

MemoryGovernor::InstanceMemory& MemoryGovernor::InstanceMemory::operator=(
    InstanceMemory&& other) noexcept {
  if (this != &other) {
    Release();
    account_ = std::move(other.account_);
    device_ = other.device_;
    bytes_ = other.bytes_;
  }
  return *this;
}

MemoryGovernor::InstanceMemory::~InstanceMemory() { Release(); }

void MemoryGovernor::InstanceMemory::Release() noexcept {
  if (account_ == nullptr) return;
  std::shared_ptr<Account::State> account = std::move(account_);
  account->governor->Release(*account, device_, bytes_);
}

// MemoryGovernor::Reservation

MemoryGovernor::Reservation::Reservation(Reservation&& other) noexcept
    : account_(std::move(other.account_)),
      device_(other.device_),
      bytes_(other.bytes_),
      first_on_device_(other.first_on_device_),
      device_free_before_(other.device_free_before_) {}

MemoryGovernor::Reservation& MemoryGovernor::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Abandon();
    account_ = std::move(other.account_);
    device_ = other.device_;
    bytes_ = other.bytes_;
    first_on_device_ = other.first_on_device_;
    device_free_before_ = other.device_free_before_;
  }
  return *this;
}

MemoryGovernor::Reservation::~Reservation() { Abandon(); }

void MemoryGovernor::Reservation::Abandon() noexcept {
  if (account_ == nullptr) return;
  std::shared_ptr<Account::State> account = std::move(account_);
  account->governor->Abandon(device_, bytes_);
}

MemoryGovernor::InstanceMemory MemoryGovernor::Reservation::Commit() {
  if (account_ == nullptr) return InstanceMemory();
  std::shared_ptr<Account::State> account = std::move(account_);
  const int64_t charged =
      account->governor->Commit(*account, device_, {bytes_, first_on_device_, device_free_before_});
  return InstanceMemory(std::move(account), device_, charged);
}

}  // namespace modelpool
