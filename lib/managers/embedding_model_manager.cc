#include "modelpool/managers/embedding_model_manager.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/base/saturating.h"
#include "lib/managers/torch_devices.h"
#include "lib/models/embedding_model_files.h"
#include "lib/models/embedding_model_state.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"
#include "modelpool/models/torch_types.h"
#include "modelpool/pool/pool_sizing.h"
#include "modelpool/text/tokenizer.h"

namespace modelpool {
EmbeddingModelManager::EmbeddingModelManager(Settings settings,
                                             std::shared_ptr<DeviceInventory> inventory,
                                             ModelFolder folder,
                                             std::shared_ptr<const EmbeddingModelFiles> files,
                                             std::shared_ptr<const Tokenizer> tokenizer,
                                             std::optional<DType> dtype, int64_t max_batch_tokens)
    : AbstractModelManager<EmbeddingModel>(std::move(settings), std::move(inventory)),
      folder_(std::move(folder)),
      files_(std::move(files)),
      tokenizer_(std::move(tokenizer)),
      dtype_(dtype),
      max_batch_tokens_(max_batch_tokens) {}

EmbeddingModelManager::~EmbeddingModelManager() = default;

absl::StatusOr<std::unique_ptr<EmbeddingModelManager>> EmbeddingModelManager::Create(
    Options options) {
  Settings settings;
  if (options.settings.has_value()) {
    settings = *std::move(options.settings);
  } else {
    MODELPOOL_ASSIGN_OR_RETURN(settings, Settings::FromEnv());
  }
  // Not the GPUs a CPU-only libtorch cannot use.
  std::shared_ptr<DeviceInventory> inventory = TorchDevices(std::move(options.inventory));
  MODELPOOL_ASSIGN_OR_RETURN(ModelFolder folder, FindModelFolder(options.model_dir));
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(folder.path, folder.label());
  if (!files.ok()) return NameModelIn(files.status(), folder);
  MODELPOOL_RETURN_IF_ERROR(CheckMaxBatchTokens(**files, options.max_batch_tokens));
  // The tokenizer's files sit with the Transformer module's, as sentence-transformers saves them.
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer((*files)->transformer_dir);
  if (!tokenizer.ok()) return NameModelIn(tokenizer.status(), folder);

  auto manager = std::unique_ptr<EmbeddingModelManager>(new EmbeddingModelManager(
      std::move(settings), std::move(inventory), std::move(folder), *std::move(files),
      *std::move(tokenizer), options.dtype, options.max_batch_tokens));
  MODELPOOL_RETURN_IF_ERROR(manager->Initialize());
  for (const Device& device : manager->devices()) {
    if (!device.is_cuda() && manager->RequestedDType(device) == DType::kFloat16) {
      Log(LogSeverity::kInfo,
          absl::StrCat(manager->model_name(), ": float16 computes in float32 on the cpu"));
    }
  }
  return manager;
}

absl::StatusOr<Embeddings> EmbeddingModelManager::Embed(absl::Span<const std::string> texts,
                                                        const EmbedOptions& options,
                                                        absl::Duration timeout) {
  MODELPOOL_ASSIGN_OR_RETURN(Lease<EmbeddingModel> lease, Acquire(timeout));
  absl::StatusOr<Embeddings> embeddings = lease->Embed(texts, options);
  // Bad input leaves the instance as it was; a device failure may not have.
  if (!embeddings.ok() && embeddings.status().code() != absl::StatusCode::kInvalidArgument) {
    lease.Destroy();
  }
  return embeddings;
}

std::string EmbeddingModelManager::model_name() const { return files_->name; }
int64_t EmbeddingModelManager::dimension() const { return files_->dimension(); }
int64_t EmbeddingModelManager::max_seq_length() const { return files_->max_seq_length; }

DType EmbeddingModelManager::RequestedDType(const Device& device) const {
  return dtype_.value_or(
      settings().dtype.value_or(device.is_cuda() ? DType::kFloat16 : DType::kFloat32));
}

absl::StatusOr<std::unique_ptr<EmbeddingModel>> EmbeddingModelManager::LoadInstance(
    const Device& device) {
  absl::StatusOr<std::unique_ptr<EmbeddingModel>> model =
      LoadEmbeddingModel(files_, tokenizer_, device, RequestedDType(device), max_batch_tokens_);
  if (!model.ok()) return NameModelIn(model.status(), folder_);
  return model;
}

MemoryFootprint EmbeddingModelManager::EstimateFootprint(const Device& device) const {
  // float16 on the CPU computes in float32 (LoadEmbeddingModel).
  DType dtype = RequestedDType(device);
  if (!device.is_cuda() && dtype == DType::kFloat16) dtype = DType::kFloat32;
  return {.shared_bytes = EncoderWeightBytes(*files_, dtype),
          .instance_bytes = EmbeddingWorkspaceBytes(*files_, dtype, max_batch_tokens_)};
}

int64_t EmbeddingModelManager::EstimateInstanceBytes() const {
  const DType dtype = RequestedDType(Device::Cuda(0));
  return SaturatingAdd(EncoderWeightBytes(*files_, dtype),
                       EmbeddingWorkspaceBytes(*files_, dtype, max_batch_tokens_));
}

std::string EmbeddingModelManager::footprint_variant(const Device& device) const {
  return std::string(DTypeName(RequestedDType(device)));
}

void EmbeddingModelManager::ReleaseCachedMemory(const Device& device) {
  ReleaseCachedTorchMemory(device);
}

}  // namespace modelpool
