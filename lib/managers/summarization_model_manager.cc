#include "modelpool/managers/summarization_model_manager.h"

#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "c10/core/ScalarType.h"
#include "lib/managers/torch_devices.h"
#include "lib/models/t5/t5_summarization_model.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

at::ScalarType TorchTypeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return at::kFloat;
    case DType::kFloat16:
      return at::kHalf;
    case DType::kBFloat16:
      return at::kBFloat16;
  }
  return at::kFloat;
}

std::string FolderName(const std::string& model_dir) {
  std::filesystem::path path(model_dir);
  if (!path.has_filename()) path = path.parent_path();  // "/models/t5/"
  return path.filename().string();
}

T5Limits LimitsOf(const SummarizationModelManager::Options& options) {
  T5Limits limits;
  limits.max_batch_size = options.max_batch_size;
  limits.max_num_beams = options.max_num_beams;
  limits.max_input_tokens = options.max_input_tokens;
  limits.max_new_tokens = options.max_new_tokens;
  return limits;
}

constexpr const char* kFloat16Refused =
    "T5 does not run in float16: its activations overflow the float16 range (use bfloat16 or "
    "float32)";

}  // namespace

SummarizationModelManager::SummarizationModelManager(Options options, Settings settings,
                                                     std::shared_ptr<DeviceInventory> inventory,
                                                     std::shared_ptr<const T5Folder> folder)
    : AbstractModelManager(std::move(settings), std::move(inventory)),
      options_(std::move(options)),
      folder_(std::move(folder)) {}

SummarizationModelManager::~SummarizationModelManager() = default;

absl::StatusOr<std::unique_ptr<SummarizationModelManager>> SummarizationModelManager::Create(
    Options options) {
  const std::string name = FolderName(options.model_dir);
  if (options.dtype == DType::kFloat16) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", kFloat16Refused));
  }
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
  std::shared_ptr<DeviceInventory> inventory =
      options.inventory ? options.inventory : DeviceInventory::System();
  if (settings.dtype == DType::kFloat16 && !options.dtype.has_value()) {
    Log(LogSeverity::kWarning,
        absl::StrCat(name, ": ignoring the float16 dtype of the settings: ", kFloat16Refused));
  }
  MODELPOOL_RETURN_IF_ERROR(StayOffGpusTorchCannotUse(name, *inventory, settings));

  MODELPOOL_ASSIGN_OR_RETURN(std::unique_ptr<T5Folder> folder, T5Folder::Open(options.model_dir));
  MODELPOOL_ASSIGN_OR_RETURN(folder->tokenizer, LoadTokenizer(options.model_dir));
  auto manager = std::unique_ptr<SummarizationModelManager>(new SummarizationModelManager(
      std::move(options), std::move(settings), std::move(inventory), std::move(folder)));
  MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
  return manager;
}

std::string SummarizationModelManager::model_name() const { return FolderName(options_.model_dir); }

DType SummarizationModelManager::DTypeFor(const Device& device) const {
  if (options_.dtype.has_value()) return *options_.dtype;
  if (settings().dtype.has_value() && *settings().dtype != DType::kFloat16) {
    return *settings().dtype;
  }
  return device.is_cuda() ? DType::kBFloat16 : DType::kFloat32;
}

absl::StatusOr<std::unique_ptr<SummarizationModel>> SummarizationModelManager::LoadInstance(
    const Device& device) {
  const c10::Device torch_device =
      device.is_cuda() ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.index))
                       : c10::Device(c10::kCPU);
  MODELPOOL_ASSIGN_OR_RETURN(
      std::unique_ptr<T5SummarizationModel> model,
      T5SummarizationModel::Load(folder_, torch_device, TorchTypeOf(DTypeFor(device)),
                                 LimitsOf(options_)));
  // The pool measures a GPU instance's footprint when this returns: it must hold its
  // workspace by then.
  if (device.is_cuda()) MODELPOOL_RETURN_IF_ERROR(model->WarmUp());
  return std::unique_ptr<SummarizationModel>(std::move(model));
}

int64_t SummarizationModelManager::EstimateInstanceBytes() const {
  const T5Config& c = folder_->files.config;
  const T5Limits limits = LimitsOf(options_);
  const at::ScalarType dtype = TorchTypeOf(DTypeFor(Device::Cuda(0)));
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  // The largest transient tensors: the encoder's attention scores with their bias, its
  // feed-forward activations, and the float32 scores over the vocabulary of every beam.
  const int64_t tokens = limits.max_batch_size * limits.max_input_tokens;
  const int64_t workspace = 3 * limits.max_batch_size * c.num_heads * limits.max_input_tokens *
                                limits.max_input_tokens * element +
                            2 * tokens * (c.gated ? 2 : 1) * c.d_ff * element +
                            4 * limits.max_rows() * c.vocab_size * 4;
  return T5Model::AllocatedBytes(c, dtype, limits) + workspace;
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
