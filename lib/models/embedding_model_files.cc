#include "lib/models/embedding_model_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/models/formats/json_file.h"
#include "lib/models/formats/weights.h"
#include "modelpool/base/logging.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

// `key` as a positive integer; 0 or less is InvalidArgument naming the file.
absl::StatusOr<int64_t> PositiveInt(const JsonFile& file, const std::string& key,
                                    std::optional<int64_t> fallback = {}) {
  MODELPOOL_ASSIGN_OR_RETURN(const int64_t value, file.Int(key, fallback));
  if (value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": ", key, " is ", value, ", expected a positive integer"));
  }
  return value;
}

absl::StatusOr<BertActivation> ParseActivation(const JsonFile& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string act, file.String("hidden_act", "gelu"));
  if (act == "gelu") return BertActivation::kGelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    return BertActivation::kGeluTanh;
  }
  if (act == "relu") return BertActivation::kRelu;
  if (act == "silu" || act == "swish") return BertActivation::kSilu;
  return absl::InvalidArgumentError(absl::StrCat(
      file.path(), ": hidden_act '", act,
      "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu)"));
}

absl::StatusOr<BertConfig> ReadBertConfig(const std::string& path) {
  MODELPOOL_ASSIGN_OR_RETURN(const JsonFile file, JsonFile::Read(path));
  MODELPOOL_ASSIGN_OR_RETURN(const std::string model_type, file.String("model_type", "bert"));
  if (model_type != "bert") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model_type '", model_type,
                                                   "' is not supported: this encoder is BERT's"));
  }
  MODELPOOL_ASSIGN_OR_RETURN(const std::string positions,
                             file.String("position_embedding_type", "absolute"));
  if (positions != "absolute") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": position_embedding_type '", positions,
                                                   "' is not supported (absolute only)"));
  }
  BertConfig c;
  MODELPOOL_ASSIGN_OR_RETURN(c.vocab_size, PositiveInt(file, "vocab_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.hidden_size, PositiveInt(file, "hidden_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.num_hidden_layers, PositiveInt(file, "num_hidden_layers"));
  MODELPOOL_ASSIGN_OR_RETURN(c.num_attention_heads, PositiveInt(file, "num_attention_heads"));
  MODELPOOL_ASSIGN_OR_RETURN(c.intermediate_size, PositiveInt(file, "intermediate_size"));
  MODELPOOL_ASSIGN_OR_RETURN(c.max_position_embeddings,
                             PositiveInt(file, "max_position_embeddings"));
  MODELPOOL_ASSIGN_OR_RETURN(c.type_vocab_size, PositiveInt(file, "type_vocab_size", 2));
  MODELPOOL_ASSIGN_OR_RETURN(c.pad_token_id, file.Int("pad_token_id", 0));
  MODELPOOL_ASSIGN_OR_RETURN(c.layer_norm_eps, file.Number("layer_norm_eps", 1e-12));
  MODELPOOL_ASSIGN_OR_RETURN(c.hidden_act, ParseActivation(file));
  if (c.hidden_size % c.num_attention_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": hidden_size ", c.hidden_size,
                                                   " is not a multiple of ", "num_attention_heads ",
                                                   c.num_attention_heads));
  }
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": pad_token_id ", c.pad_token_id,
                                                   " is outside the vocabulary of ", c.vocab_size));
  }
  if (!(c.layer_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": layer_norm_eps is ", c.layer_norm_eps, ", expected > 0"));
  }
  return c;
}

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
    return absl::InvalidArgumentError(
        absl::StrCat(modules_json, ": a module's path is ", path->dump(), ", expected a string"));
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
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a JSON array of modules"));
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
    MODELPOOL_ASSIGN_OR_RETURN(length, PositiveInt(st, "max_seq_length"));
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

// The names `name` may have in a checkpoint: TensorFlow-era LayerNorms say gamma and beta.
std::vector<std::string> NameVariants(const std::string& prefix, const std::string& name) {
  std::vector<std::string> names = {prefix + name};
  if (absl::EndsWith(name, "LayerNorm.weight")) {
    names.push_back(prefix + name.substr(0, name.size() - 6) + "gamma");
  } else if (absl::EndsWith(name, "LayerNorm.bias")) {
    names.push_back(prefix + name.substr(0, name.size() - 4) + "beta");
  }
  return names;
}

// Every tensor the encoder reads, with the shape `config` gives it.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(const BertConfig& c) {
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"embeddings.word_embeddings.weight", {c.vocab_size, h}},
      {"embeddings.position_embeddings.weight", {c.max_position_embeddings, h}},
      {"embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}},
      {"embeddings.LayerNorm.weight", {h}},
      {"embeddings.LayerNorm.bias", {h}},
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("encoder.layer.", l, ".");
    for (const char* m : {"query", "key", "value"}) {
      t.push_back({absl::StrCat(p, "attention.self.", m, ".weight"), {h, h}});
      t.push_back({absl::StrCat(p, "attention.self.", m, ".bias"), {h}});
    }
    t.push_back({p + "attention.output.dense.weight", {h, h}});
    t.push_back({p + "attention.output.dense.bias", {h}});
    t.push_back({p + "attention.output.LayerNorm.weight", {h}});
    t.push_back({p + "attention.output.LayerNorm.bias", {h}});
    t.push_back({p + "intermediate.dense.weight", {i, h}});
    t.push_back({p + "intermediate.dense.bias", {i}});
    t.push_back({p + "output.dense.weight", {h, i}});
    t.push_back({p + "output.dense.bias", {h}});
    t.push_back({p + "output.LayerNorm.weight", {h}});
    t.push_back({p + "output.LayerNorm.bias", {h}});
  }
  return t;
}

absl::Status CheckTensors(const EmbeddingModelFiles& files) {
  for (const auto& [name, shape] : ExpectedTensors(files.config)) {
    const std::string stored = files.TensorName(name);
    const SafetensorsCheckpoint::Entry entry = files.checkpoint->Find(stored);
    if (entry.tensor == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("the weights in ", files.transformer_dir, " have no tensor '", stored, "'"));
    }
    if (absl::Status valid = CheckTensor(*files.checkpoint, stored, shape); !valid.ok()) {
      return absl::Status(valid.code(), absl::StrCat(entry.file->path(), ": ", valid.message(),
                                                     " (from config.json)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t EmbeddingModelFiles::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, shape] : ExpectedTensors(config)) {
    int64_t size = 1;
    for (int64_t d : shape) size *= d;
    n += size;
  }
  return n;
}

std::string EmbeddingModelFiles::TensorName(const std::string& name) const {
  const std::vector<std::string> variants = NameVariants(tensor_prefix, name);
  for (const std::string& variant : variants) {
    if (checkpoint->Find(variant).tensor != nullptr) return variant;
  }
  return variants.front();
}

absl::StatusOr<EmbeddingModelFiles> ReadEmbeddingModelConfig(const std::string& model_dir) {
  const fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model folder ", model_dir, " does not exist"));
  }
  EmbeddingModelFiles files;
  files.model_dir = model_dir;
  files.name =
      dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  Modules modules{.transformer_dir = dir};
  const bool sentence_transformers = fs::exists(dir / "modules.json", ec);
  if (sentence_transformers) {
    MODELPOOL_ASSIGN_OR_RETURN(modules, ReadModules(dir));
  }
  files.transformer_dir = modules.transformer_dir.string();
  MODELPOOL_ASSIGN_OR_RETURN(files.config,
                             ReadBertConfig((modules.transformer_dir / "config.json").string()));
  if (sentence_transformers) {
    MODELPOOL_ASSIGN_OR_RETURN(files.pooling,
                               ReadPoolingConfig((modules.pooling_dir / "config.json").string(),
                                                 files.config.hidden_size));
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
      ReadMaxSeqLength(modules.transformer_dir, files.name, files.config.max_position_embeddings));
  return files;
}

absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> ReadEmbeddingModelFiles(
    const std::string& model_dir) {
  MODELPOOL_ASSIGN_OR_RETURN(EmbeddingModelFiles config, ReadEmbeddingModelConfig(model_dir));
  auto files = std::make_shared<EmbeddingModelFiles>(std::move(config));
  MODELPOOL_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsCheckpoint> checkpoint,
                             SafetensorsCheckpoint::Open(files->transformer_dir));
  files->checkpoint = std::move(checkpoint);
  // Checkpoints of BertFor* heads keep the encoder under "bert.".
  const char* kProbe = "embeddings.word_embeddings.weight";
  if (files->checkpoint->Find(kProbe).tensor == nullptr &&
      files->checkpoint->Find(absl::StrCat("bert.", kProbe)).tensor != nullptr) {
    files->tensor_prefix = "bert.";
  }
  MODELPOOL_RETURN_IF_ERROR(CheckTensors(*files));
  return std::shared_ptr<const EmbeddingModelFiles>(std::move(files));
}

absl::Status CheckMaxBatchTokens(const EmbeddingModelFiles& files, int64_t max_batch_tokens) {
  if (max_batch_tokens < files.max_seq_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.name, ": max_batch_tokens ", max_batch_tokens,
                     " cannot hold one text of max_seq_length ", files.max_seq_length));
  }
  return absl::OkStatus();
}

}  // namespace modelpool
