#include "modelpool/managers/summarization_model_manager.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/base/saturating.h"
#include "lib/managers/torch_devices.h"
#include "lib/models/registry.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"

namespace modelpool {
namespace {

SummarizerLimits LimitsOf(const SummarizationModelManager::Options& options) {
  SummarizerLimits limits;
  limits.max_batch_size = options.max_batch_size;
  limits.max_num_beams = options.max_num_beams;
  limits.max_input_tokens = options.max_input_tokens;
  limits.max_new_tokens = options.max_new_tokens;
  return limits;
}

}  // namespace

SummarizationModelManager::SummarizationModelManager(Options options, Settings settings,
                                                     std::shared_ptr<DeviceInventory> inventory,
                                                     ModelFolder model_folder,
                                                     std::shared_ptr<const SummarizerFolder> folder)
    : AbstractModelManager(std::move(settings), std::move(inventory)),
      options_(std::move(options)),
      model_folder_(std::move(model_folder)),
      folder_(std::move(folder)) {}

SummarizationModelManager::~SummarizationModelManager() = default;

absl::StatusOr<std::unique_ptr<SummarizationModelManager>> SummarizationModelManager::Create(
    Options options) {
  MODELPOOL_ASSIGN_OR_RETURN(ModelFolder model_folder, FindModelFolder(options.model_dir));
  const std::string name = model_folder.label();
  if (options.max_batch_size < 1 || options.max_num_beams < 1 || options.max_input_tokens < 1 ||
      options.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name,
                     ": max_batch_size, max_num_beams, max_input_tokens and max_new_tokens must be "
                     "at least 1"));
  }
  Settings settings;
  if (options.settings.has_value()) {
    settings = *options.settings;
  } else {
    MODELPOOL_ASSIGN_OR_RETURN(settings, Settings::FromEnv());
  }
  // Not the GPUs a CPU-only libtorch cannot use.
  std::shared_ptr<DeviceInventory> inventory = TorchDevices(options.inventory);
  absl::StatusOr<std::shared_ptr<const SummarizerFolder>> folder =
      OpenSummarizerFolder(model_folder.path, name);
  if (!folder.ok()) return NameModelIn(folder.status(), model_folder);
  if (options.dtype.has_value()) {
    if (absl::Status refused = (*folder)->CheckDType(*options.dtype); !refused.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", refused.message()));
    }
  } else if (settings.dtype.has_value()) {
    if (absl::Status refused = (*folder)->CheckDType(*settings.dtype); !refused.ok()) {
      Log(LogSeverity::kWarning,
          absl::StrCat(name, ": ignoring the dtype of the settings: ", refused.message()));
    }
  }
  auto manager = std::unique_ptr<SummarizationModelManager>(
      new SummarizationModelManager(std::move(options), std::move(settings), std::move(inventory),
                                    std::move(model_folder), *std::move(folder)));
  MODELPOOL_RETURN_IF_ERROR(manager->CheckInstanceBytes());
  MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
  return manager;
}

std::string SummarizationModelManager::model_name() const { return folder_->name(); }

absl::Status SummarizationModelManager::CheckInstanceBytes() const {
  const int64_t bytes = EstimateInstanceBytes();
  if (bytes <= kMaxInstanceBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      model_name(), ": an instance would need ",
      bytes == kSaturated ? "more than 2^63" : absl::StrCat(bytes), " bytes for max_batch_size ",
      options_.max_batch_size, ", max_num_beams ", options_.max_num_beams, ", max_input_tokens ",
      options_.max_input_tokens, " and max_new_tokens ", options_.max_new_tokens, "; the limit is ",
      kMaxInstanceBytes, ": lower these limits"));
}

DType SummarizationModelManager::DTypeFor(const Device& device) const {
  if (options_.dtype.has_value()) return *options_.dtype;
  if (settings().dtype.has_value() && folder_->CheckDType(*settings().dtype).ok()) {
    return *settings().dtype;
  }
  return folder_->DefaultDType(device);
}

absl::StatusOr<std::unique_ptr<SummarizationModel>> SummarizationModelManager::LoadInstance(
    const Device& device) {
  absl::StatusOr<std::unique_ptr<SummarizationModel>> model =
      folder_->Load(device, DTypeFor(device), LimitsOf(options_));
  if (!model.ok()) return NameModelIn(model.status(), model_folder_);
  return model;
}

MemoryFootprint SummarizationModelManager::EstimateFootprint(const Device& device) const {
  const DType dtype = DTypeFor(device);
  SummarizerLimits limits = LimitsOf(options_);
  // On the CPU the decoder's self-attention cache starts small and grows with the text being
  // generated (Note [Decoder caches]): plan with its first positions, not the most allowed.
  if (!device.is_cuda()) limits.max_new_tokens = std::min<int64_t>(limits.max_new_tokens, 64);
  return {.shared_bytes = folder_->WeightBytes(dtype),
          .instance_bytes = folder_->InstanceBytes(dtype, limits)};
}

int64_t SummarizationModelManager::EstimateInstanceBytes() const {
  const DType dtype = DTypeFor(Device::Cuda(0));
  return SaturatingAdd(folder_->WeightBytes(dtype),
                       folder_->InstanceBytes(dtype, LimitsOf(options_)));
}

absl::StatusOr<std::vector<std::string>> SummarizationModelManager::Summarize(
    absl::Span<const std::string> texts, const GenerationOptions& options, absl::Duration timeout) {
  MODELPOOL_ASSIGN_OR_RETURN(Lease<SummarizationModel> lease, Acquire(timeout));
  return lease->Summarize(texts, options);
}

std::string SummarizationModelManager::footprint_variant(const Device& device) const {
  return std::string(DTypeName(DTypeFor(device)));
}

void SummarizationModelManager::ReleaseCachedMemory(const Device& device) {
  ReleaseCachedTorchMemory(device);
}

}  // namespace modelpool
