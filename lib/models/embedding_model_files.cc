#include "lib/models/embedding_model_files.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "c10/core/impl/VirtualGuardImpl.h"
#include "lib/base/saturating.h"
#include "lib/models/formats/json_file.h"
#include "lib/models/formats/weights.h"
#include "lib/models/registry.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<PoolingConfig> ReadPoolingConfig(const std::string& path, int64_t hidden_size) {
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile file, JsonFile::Read(path));
  PoolingConfig p;
  MODELPOOL_ASSIGN_OR_RETURN(p.cls, file.Bool("pooling_mode_cls_token", false));
  MODELPOOL_ASSIGN_OR_RETURN(p.max, file.Bool("pooling_mode_max_tokens", false));
  MODELPOOL_ASSIGN_OR_RETURN(p.mean, file.Bool("pooling_mode_mean_tokens", false));
  MODELPOOL_ASSIGN_OR_RETURN(p.mean_sqrt_len,
                             file.Bool("pooling_mode_mean_sqrt_len_tokens", false));
  MODELPOOL_ASSIGN_OR_RETURN(p.last_token, file.Bool("pooling_mode_lasttoken", false));
  MODELPOOL_ASSIGN_OR_RETURN(p.include_prompt, file.Bool("include_prompt", true));
  MODELPOOL_ASSIGN_OR_RETURN(const bool weighted,
                             file.Bool("pooling_mode_weightedmean_tokens", false));
  if (weighted) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": pooling_mode_weightedmean_tokens is not supported"));
  }
  if (p.num_modes() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no pooling mode is set"));
  }
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t dim, file.Int("word_embedding_dimension", hidden_size));
  if (dim != hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": word_embedding_dimension is ", dim,
                                                   " but config.json's hidden_size is ",
                                                   hidden_size));
  }
  return p;
}

// The last component of a module's type: "sentence_transformers.models.Pooling" -> "Pooling".
std::string ModuleKind(const std::string& type) {
  const size_t dot = type.rfind('.');
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

// Where a module's files are. Paths in modules.json are relative and stay inside the folder.
absl::StatusOr<fs::path> ModulePath(const std::string& modules_json, const fs::path& dir,
                                    const nlohmann::json& module) {
  const auto path = module.find("path");
  if (path == module.end() || path->is_null()) return dir;
  if (!path->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(modules_json, ": a module's path is ",
                                                   DescribeJson(*path), ", expected a string"));
  }
  const fs::path relative(path->get<std::string>());
  for (const fs::path& part : relative) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(modules_json, ": module path '", relative.string(), "' leaves the folder"));
    }
  }
  if (relative.is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat(modules_json, ": module path '", relative.string(), "' is absolute"));
  }
  return dir / relative;
}

// The sentence-transformers modules: where the Transformer's files are, the Pooling folder,
// and whether a Normalize module follows.
struct Modules {
  fs::path transformer_dir;
  fs::path pooling_dir;
  bool normalize = false;
};

absl::StatusOr<Modules> ReadModules(const fs::path& dir) {
  const std::string path = (dir / "modules.json").string();
  MODELPOOL_ASSIGN_OR_RETURN(const nlohmann::json json, ReadJsonFile(path));
  if (!json.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", DescribeJson(json), ", not a JSON array of modules"));
  }
  Modules modules;
  // sentence-transformers runs the modules in this order; others it could run, we cannot.
  const std::vector<std::string> order = {"Transformer", "Pooling", "Normalize"};
  size_t next = 0;
  for (const nlohmann::json& module : json) {
    const auto type = module.is_object() ? module.find("type") : module.end();
    if (type == module.end() || !type->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": a module has no type"));
    }
    const std::string kind = ModuleKind(type->get<std::string>());
    const auto at = std::find(order.begin() + next, order.end(), kind);
    if (at == order.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": module ", type->get<std::string>(),
          " is not supported here (Transformer, then Pooling, then an optional Normalize)"));
    }
    next = at - order.begin() + 1;
    MODELPOOL_ASSIGN_OR_RETURN(const fs::path module_dir, ModulePath(path, dir, module));
    if (kind == "Transformer") modules.transformer_dir = module_dir;
    if (kind == "Pooling") modules.pooling_dir = module_dir;
    if (kind == "Normalize") modules.normalize = true;
  }
  if (modules.transformer_dir.empty() || modules.pooling_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a Transformer and a Pooling module"));
  }
  return modules;
}

// The maximum length: `sentence_bert_config.json`'s, else the tokenizer's `model_max_length`,
// at most the number of positions the encoder has.
absl::StatusOr<int64_t> ReadMaxSeqLength(const fs::path& dir, const std::string& name,
                                         int64_t max_positions) {
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile st,
                             JsonFile::ReadIfPresent((dir / "sentence_bert_config.json").string()));
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile tokenizer,
                             JsonFile::ReadIfPresent((dir / "tokenizer_config.json").string()));
  int64_t length = max_positions;
  if (st.Has("max_seq_length")) {
    MODELPOOL_ASSIGN_OR_RETURN(length, st.PositiveInt("max_seq_length"));
  } else if (tokenizer.Has("model_max_length") &&
             tokenizer.json().at("model_max_length").is_number_integer()) {
    // Tokenizers without a limit say 1e30, which the bound below takes care of.
    length = std::max<int64_t>(1, tokenizer.json().at("model_max_length").get<int64_t>());
  }
  if (length > max_positions) {
    Log(LogSeverity::kWarning,
        absl::StrCat(name, ": max_seq_length ", length, " is more than the ", max_positions,
                     " positions the encoder has; texts are cut at ", max_positions));
    length = max_positions;
  }
  if (length < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": max_seq_length is ", length, "; [CLS] and [SEP] alone need 2"));
  }
  return length;
}

// A folder as ReadEmbeddingModelConfig reads it, with its encoder architecture still open to
// `Bind`, before it is shared.
struct Folder {
  EmbeddingModelFiles files;
  std::shared_ptr<EncoderArchitecture> encoder;
};

absl::StatusOr<Folder> ReadFolder(const std::string& model_dir, const std::string& name) {
  const fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model folder ", model_dir, " does not exist"));
  }
  Folder folder;
  EmbeddingModelFiles& files = folder.files;
  files.model_dir = model_dir;
  files.name = !name.empty() ? name : ModelFolder{model_dir, model_dir}.label();
  Modules modules{.transformer_dir = dir};
  // A link that leads nowhere counts: reading it says so.
  const bool sentence_transformers =
      fs::exists(dir / "modules.json", ec) || fs::is_symlink(dir / "modules.json", ec);
  if (sentence_transformers) {
    MODELPOOL_ASSIGN_OR_RETURN(modules, ReadModules(dir));
  }
  files.transformer_dir = modules.transformer_dir.string();
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile config,
                             JsonFile::Read((modules.transformer_dir / "config.json").string()));
  MODELPOOL_ASSIGN_OR_RETURN(folder.encoder, ReadEncoderArchitecture(config));
  files.encoder = folder.encoder;
  const EncoderShape& shape = folder.encoder->shape();
  if (sentence_transformers) {
    MODELPOOL_ASSIGN_OR_RETURN(
        files.pooling,
        ReadPoolingConfig((modules.pooling_dir / "config.json").string(), shape.hidden_size));
    files.normalize = modules.normalize;
  } else {
    files.pooling.mean = true;
    Log(LogSeverity::kInfo,
        absl::StrCat(files.name,
                     ": no modules.json, so mean pooling without normalization, "
                     "as sentence-transformers does for a plain model"));
  }
  MODELPOOL_ASSIGN_OR_RETURN(
      files.max_seq_length,
      ReadMaxSeqLength(modules.transformer_dir, files.name, shape.max_positions));
  return folder;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Encoder>> EmbeddingModelFiles::LoadEncoder(
    c10::Device device, c10::ScalarType dtype) const {
  return loaded_encoders->Get(
      absl::StrCat(device.str(), "/", c10::toString(dtype)),
      [&]() -> absl::StatusOr<std::shared_ptr<const Encoder>> {
        std::shared_ptr<const Encoder> loaded = encoder->Load(*checkpoint, device, dtype);
        // Other instances read the weights on their own streams: the copies must be done.
        if (!device.is_cpu())
          c10::impl::VirtualGuardImpl(device.type()).getStream(device).synchronize();
        return loaded;
      });
}

absl::StatusOr<EmbeddingModelFiles> ReadEmbeddingModelConfig(const std::string& model_dir) {
  MODELPOOL_ASSIGN_OR_RETURN(Folder folder, ReadFolder(model_dir, ""));
  return std::move(folder.files);
}

absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> ReadEmbeddingModelFiles(
    const std::string& model_dir, const std::string& name) {
  MODELPOOL_ASSIGN_OR_RETURN(Folder folder, ReadFolder(model_dir, name));
  EmbeddingModelFiles& files = folder.files;
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsCheckpoint> checkpoint,
                             SafetensorsCheckpoint::Open(files.transformer_dir));
  MODELPOOL_RETURN_IF_ERROR(folder.encoder->Bind(*checkpoint, files.transformer_dir));
  WarnOfUnusedTensors(files.name, folder.encoder->UnusedTensors(*checkpoint));
  files.checkpoint = std::move(checkpoint);
  return std::make_shared<const EmbeddingModelFiles>(std::move(files));
}

absl::Status CheckMaxBatchTokens(const EmbeddingModelFiles& files, int64_t max_batch_tokens) {
  if (max_batch_tokens < files.max_seq_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.name, ": max_batch_tokens ", max_batch_tokens,
                     " cannot hold one text of max_seq_length ", files.max_seq_length));
  }
  // float32, the largest element a workspace has.
  const int64_t workspace = files.encoder->WorkspaceBytes(max_batch_tokens, 4);
  if (workspace > kMaxInstanceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.name, ": max_batch_tokens ", max_batch_tokens, " would need ",
                     workspace == kSaturated ? "more than 2^63" : absl::StrCat(workspace),
                     " bytes of workspace per batch; the limit is ", kMaxInstanceBytes));
  }
  return absl::OkStatus();
}

}  // namespace modelpool
