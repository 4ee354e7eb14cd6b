// Model folders as a careless or hostile user leaves them: every one gets a status naming the
// culprit, in bounded time and memory, and nothing wrong passes silently.

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "lib/models/embedding_model_files.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/t5/t5_folder.h"
#include "modelpool/base/logging.h"
#include "modelpool/managers/embedding_model_manager.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "tests/testing/status.h"
#include "tests/testing/tiny_bert.h"
#include "tests/testing/tiny_t5.h"

// After libtorch's headers, whose logging defines a CHECK macro too.
#include <catch2/catch.hpp>

namespace modelpool {
namespace {

namespace fs = std::filesystem;
using testing::Mentions;

const std::string kModels = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/models";
const std::string kT5Fixture = kModels + "/t5-tiny-relu";

Settings OnCpu() {
  Settings settings;
  settings.force_cpu = true;
  settings.max_instances = 1;
  return settings;
}

// Records the messages logged while it lives, at every level.
class LogRecorder {
 public:
  LogRecorder() : level_(LogLevel()) {
    SetLogLevel(LogSeverity::kDebug);
    SetLogSink([this](LogSeverity, absl::string_view message) { messages_.emplace_back(message); });
  }
  ~LogRecorder() {
    SetLogSink(nullptr);
    SetLogLevel(level_);
  }
  // The messages that contain `text`.
  std::vector<std::string> With(const std::string& text) const {
    std::vector<std::string> found;
    for (const std::string& m : messages_) {
      if (m.find(text) != std::string::npos) found.push_back(m);
    }
    return found;
  }

 private:
  LogSeverity level_;
  std::vector<std::string> messages_;  // only the test's thread logs here
};

fs::path TinyBert(const std::string& name, const testing::TinyBertSpec& spec = {}) {
  const fs::path dir = testing::TempDir(name);
  testing::WriteTinyBert(dir, spec);
  return dir;
}

// A copy of the bert-tiny-cls fixture (weights and a tokenizer) in a fresh folder.
fs::path BertFixtureCopy(const std::string& name) {
  const fs::path dir = testing::TempDir(name);
  fs::copy(kModels + "/bert-tiny-cls", dir, fs::copy_options::recursive);
  return dir;
}

void EditJson(const fs::path& path, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json json = nlohmann::json::parse(std::ifstream(path));
  edit(json);
  std::ofstream(path, std::ios::trunc) << json.dump(2);
}

TEST_CASE("Every JSON file of an embedding folder that is a directory is named, not an abort") {
  for (const char* file : {"config.json", "modules.json", "1_Pooling/config.json",
                           "sentence_bert_config.json", "tokenizer_config.json"}) {
    const fs::path dir = TinyBert("hostile_dir_json");
    fs::remove(dir / file);
    fs::create_directories(dir / file);
    absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
        ReadEmbeddingModelFiles(dir.string());
    INFO(file << ": " << files.status());
    CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(files.status(), (dir / file).string() + " is a directory"));
  }
  // The shard index of a sharded checkpoint.
  const fs::path dir = TinyBert("hostile_dir_index");
  fs::remove(dir / "model.safetensors");
  fs::create_directories(dir / "model.safetensors.index.json");
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(files.status(), "model.safetensors.index.json is a directory"));
}

TEST_CASE("config.json and generation_config.json of a T5 folder that are directories are named") {
  for (const char* file : {"config.json", "generation_config.json"}) {
    const fs::path dir = testing::WriteTinyT5("hostile_t5_dir_json", {});
    fs::remove(dir / file);
    fs::create_directories(dir / file);
    absl::StatusOr<std::shared_ptr<const T5Folder>> folder = T5Folder::Read(dir.string());
    INFO(file << ": " << folder.status());
    CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(folder.status(), (dir / file).string() + " is a directory"));
  }
}

TEST_CASE("A config.json that is a FIFO is refused at once instead of blocking the load") {
  const fs::path dir = TinyBert("hostile_fifo");
  fs::remove(dir / "config.json");
  REQUIRE(::mkfifo((dir / "config.json").c_str(), 0600) == 0);
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(files.status(), (dir / "config.json").string() + " is a FIFO"));
}

TEST_CASE("num_hidden_layers beyond the checkpoint is refused before anything per layer is built") {
  // 10^9 layers used to build the list of 16 * 10^9 expected tensors first (60 s, 4.4 GB).
  const fs::path dir = TinyBert("hostile_bert_layers");
  EditJson(dir / "config.json", [](nlohmann::json& c) { c["num_hidden_layers"] = 1000000000; });
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(files.status(),
                 "config.json has num_hidden_layers 1000000000, but the weights "
                 "hold 2 layers"));
}

TEST_CASE("num_layers and num_decoder_layers beyond a T5 checkpoint are refused the same way") {
  for (const char* key : {"num_layers", "num_decoder_layers"}) {
    const std::string dir = testing::WriteTinyT5("hostile_t5_layers", {});
    EditJson(fs::path(dir) / "config.json", [&](nlohmann::json& c) { c[key] = 1000000000; });
    absl::StatusOr<std::shared_ptr<const T5Folder>> folder = T5Folder::Read(dir);
    INFO(folder.status());
    CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(folder.status(), absl::StrCat("config.json has ", key,
                                                 " 1000000000, but the "
                                                 "weights hold 2 blocks")));
  }
}

TEST_CASE("A BERT config with fewer layers than the checkpoint loads with a warning naming them") {
  const fs::path dir = TinyBert("hostile_bert_fewer_layers");
  EditJson(dir / "config.json", [](nlohmann::json& c) { c["num_hidden_layers"] = 1; });
  LogRecorder log;
  absl::StatusOr<std::shared_ptr<const EmbeddingModelFiles>> files =
      ReadEmbeddingModelFiles(dir.string());
  REQUIRE(files.ok());
  const std::vector<std::string> warnings = log.With("tensors of the weights are not used");
  REQUIRE(warnings.size() == 1);
  CHECK(Mentions(absl::InternalError(warnings[0]), "16 tensors"));
  CHECK(Mentions(absl::InternalError(warnings[0]), "encoder.layer.1.attention.output.dense.bias"));
  // The pooler every BertModel checkpoint holds is not the config's doing.
  CHECK_FALSE(Mentions(absl::InternalError(warnings[0]), "pooler"));
}

TEST_CASE("A T5 config with fewer layers than the checkpoint loads with a warning naming them") {
  const std::string dir = testing::WriteTinyT5("hostile_t5_fewer_layers", {});
  EditJson(fs::path(dir) / "config.json", [](nlohmann::json& c) {
    c["num_layers"] = 1;
    c["num_decoder_layers"] = 1;
  });
  LogRecorder log;
  absl::StatusOr<std::shared_ptr<const T5Folder>> folder = T5Folder::Read(dir);
  REQUIRE(folder.ok());
  const std::vector<std::string> warnings = log.With("tensors of the weights are not used");
  REQUIRE(warnings.size() == 1);
  INFO(warnings[0]);
  // Block 1 of the encoder (8 tensors) and of the decoder (13); the first eight are named.
  CHECK(Mentions(absl::InternalError(warnings[0]), "21 tensors"));
  CHECK(
      Mentions(absl::InternalError(warnings[0]), "decoder.block.1.layer.0.SelfAttention.k.weight"));
  CHECK(Mentions(absl::InternalError(warnings[0]), "and 13 more"));
  const std::vector<std::string> none = log.With("shared.weight");
  CHECK(none.empty());
}

TEST_CASE("A T5 d_kv that would wrap around in num_heads * d_kv is refused, named") {
  // 2^62 + 8: with 4 heads the product wraps to 32, which a 4-head, 8-wide checkpoint matches.
  const std::string dir = testing::WriteTinyT5("hostile_t5_d_kv", {});
  EditJson(fs::path(dir) / "config.json",
           [](nlohmann::json& c) { c["d_kv"] = (int64_t{1} << 62) + 8; });
  absl::StatusOr<std::shared_ptr<const T5Folder>> folder = T5Folder::Read(dir);
  CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(folder.status(), "config.json: d_kv is 4611686018427387912, expected 1 to"));
  EditJson(fs::path(dir) / "config.json", [](nlohmann::json& c) {
    c["d_kv"] = int64_t{1} << 30;
    c["num_heads"] = 4;
  });
  folder = T5Folder::Read(dir);
  CHECK(folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(folder.status(), "num_heads 4 x d_kv 1073741824 is 4294967296"));
}

// Overwrites the float32 values of `tensor` in `dir`/model.safetensors with NaN.
void PoisonTensor(const fs::path& dir, const std::string& tensor) {
  const std::string path = (dir / "model.safetensors").string();
  uint64_t header = 0;
  int64_t begin = 0, end = 0;
  {
    auto file = SafetensorsFile::Open(path);
    REQUIRE(file.ok());
    const SafetensorsTensor* t = (*file)->Find(tensor);
    REQUIRE(t != nullptr);
    begin = static_cast<int64_t>(t->begin);
    end = static_cast<int64_t>(t->end);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(&header), sizeof(header));
  }
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(8 + header + begin));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t at = begin; at < end; at += 4) out.write(reinterpret_cast<const char*>(&nan), 4);
}

TEST_CASE("NaN weights give an error naming the model and the texts, not vectors of null") {
  const fs::path dir = BertFixtureCopy("hostile_nan");
  PoisonTensor(dir, "encoder.layer.1.output.dense.weight");
  auto manager = EmbeddingModelManager::Create(
      {.model_dir = dir.string(), .max_batch_tokens = 64, .settings = OnCpu()});
  INFO(manager.status());
  REQUIRE(manager.ok());
  auto lease = (*manager)->Acquire(absl::Seconds(30));
  REQUIRE(lease.ok());
  absl::StatusOr<Embeddings> vectors = (*lease)->EmbedIds({{2, 5, 3}, {2, 7, 7, 3}});
  CHECK(vectors.status().code() == absl::StatusCode::kInternal);
  CHECK(Mentions(vectors.status(), "the vectors of 2 of 2 texts (0, 1) hold NaN"));
}

TEST_CASE("A max_batch_tokens whose workspace would overflow is refused, named") {
  const fs::path dir = TinyBert("hostile_batch_tokens");
  auto manager = EmbeddingModelManager::Create(
      {.model_dir = dir.string(), .max_batch_tokens = int64_t{1} << 60, .settings = OnCpu()});
  CHECK(manager.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(manager.status(), "max_batch_tokens 1152921504606846976 would need"));
}

SummarizationModelManager::Options T5Options(int max_new_tokens) {
  SummarizationModelManager::Options options;
  options.model_dir = kT5Fixture;
  options.settings = OnCpu();
  options.max_batch_size = 2;
  options.max_num_beams = 1;
  options.max_input_tokens = 32;
  options.max_new_tokens = max_new_tokens;
  return options;
}

TEST_CASE("A million new tokens allowed, a few generated: memory follows what decoding uses") {
  // The position bias and the caches were allocated for the limit: 20,000 tokens took 15.8 GB
  // on a model that stops at once, and 10^6 ended in an allocator error naming no limit.
  auto manager = SummarizationModelManager::Create(T5Options(1000000));
  REQUIRE(manager.ok());
  auto lease = (*manager)->Acquire(absl::Seconds(60));
  REQUIRE(lease.ok());
  GenerationOptions options;
  options.max_new_tokens = 1000000;
  options.min_new_tokens = 0;
  // The fixture's random weights end a text within a few tokens or repeat one; no_repeat keeps
  // it from running to the limit.
  options.no_repeat_ngram_size = 1;
  absl::StatusOr<std::vector<std::vector<int32_t>>> ids =
      (*lease)->Generate({{5, 6, 7, 1}}, options);
  REQUIRE(ids.ok());
  CHECK(ids->size() == 1);
  CHECK((*ids)[0].size() <= 200);
}

TEST_CASE("Limits that no instance could be planned for are refused, naming them") {
  SummarizationModelManager::Options options = T5Options(1 << 30);
  options.max_batch_size = 1 << 30;
  options.max_num_beams = 1 << 30;
  auto manager = SummarizationModelManager::Create(options);
  CHECK(manager.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(manager.status(), "max_new_tokens 1073741824"));
  CHECK(Mentions(manager.status(), "lower these limits"));
}

TEST_CASE("min_new_tokens above max_new_tokens in one request is an error naming both") {
  auto manager = SummarizationModelManager::Create(T5Options(16));
  REQUIRE(manager.ok());
  auto lease = (*manager)->Acquire(absl::Seconds(60));
  REQUIRE(lease.ok());
  GenerationOptions options;
  options.max_new_tokens = 4;
  options.min_new_tokens = 9;
  absl::StatusOr<std::vector<std::vector<int32_t>>> ids = (*lease)->Generate({{5, 6, 1}}, options);
  CHECK(ids.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(ids.status(), "min_new_tokens 9 is above max_new_tokens 4"));
}

// A Hugging Face cache under a fresh folder, HF_HUB_CACHE pointing at it while this lives.
class HubCache {
 public:
  explicit HubCache(const std::string& name) : root_(testing::TempDir(name)) {
    const char* previous = std::getenv("HF_HUB_CACHE");
    if (previous != nullptr) previous_ = previous;
    ::setenv("HF_HUB_CACHE", root_.c_str(), 1);
  }
  ~HubCache() {
    if (previous_.has_value()) {
      ::setenv("HF_HUB_CACHE", previous_->c_str(), 1);
    } else {
      ::unsetenv("HF_HUB_CACHE");
    }
  }
  // Puts the files of `folder` into the cache as `id` at main, each a link to a blob, as
  // huggingface_hub does. Returns the snapshot folder.
  fs::path Add(const std::string& id, const fs::path& folder) {
    const std::string repo_name =
        "models--" + id.substr(0, id.find('/')) + "--" + id.substr(id.find('/') + 1);
    const fs::path repo = root_ / repo_name;
    const fs::path snapshot = repo / "snapshots" / kCommit;
    fs::create_directories(repo / "refs");
    fs::create_directories(repo / "blobs");
    std::ofstream(repo / "refs" / "main") << kCommit;
    int blob = 0;
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
      if (!entry.is_regular_file()) continue;
      const fs::path relative = fs::relative(entry.path(), folder);
      const std::string blob_name = "blob" + std::to_string(blob++);
      fs::copy_file(entry.path(), repo / "blobs" / blob_name);
      fs::create_directories((snapshot / relative).parent_path());
      fs::create_symlink(
          fs::relative(repo / "blobs" / blob_name, (snapshot / relative).parent_path()),
          snapshot / relative);
    }
    return snapshot;
  }

  static constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";

 private:
  fs::path root_;
  std::optional<std::string> previous_;
};

TEST_CASE("Managers find models by Hugging Face id; logs and errors name the id, not the hash") {
  HubCache cache("hostile_hub");
  cache.Add("acme/tiny-bert", BertFixtureCopy("hostile_hub_bert"));
  cache.Add("acme/tiny-t5", kT5Fixture);
  LogRecorder log;
  auto embedder = EmbeddingModelManager::Create(
      {.model_dir = "acme/tiny-bert", .max_batch_tokens = 64, .settings = OnCpu()});
  INFO(embedder.status());
  REQUIRE(embedder.ok());
  CHECK((*embedder)->model_name() == "acme/tiny-bert");
  auto summarizer = SummarizationModelManager::Create(T5Options(8));
  REQUIRE(summarizer.ok());
  SummarizationModelManager::Options by_id = T5Options(8);
  by_id.model_dir = "acme/tiny-t5";
  auto t5 = SummarizationModelManager::Create(by_id);
  REQUIRE(t5.ok());
  CHECK((*t5)->model_name() == "acme/tiny-t5");
  auto lease = (*t5)->Acquire(absl::Seconds(60));
  REQUIRE(lease.ok());
  CHECK_FALSE(log.With("acme/tiny-bert").empty());
  CHECK(log.With(HubCache::kCommit).empty());
}

TEST_CASE("An error in a cached model names the file under the model's id") {
  HubCache cache("hostile_hub_broken");
  const fs::path dir = BertFixtureCopy("hostile_hub_broken_bert");
  EditJson(dir / "config.json", [](nlohmann::json& c) { c["hidden_size"] = "wide"; });
  cache.Add("acme/broken-bert", dir);
  auto embedder =
      EmbeddingModelManager::Create({.model_dir = "acme/broken-bert", .settings = OnCpu()});
  CHECK(embedder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(embedder.status(), "acme/broken-bert/config.json: hidden_size is \"wide\""));
  CHECK_FALSE(Mentions(embedder.status(), HubCache::kCommit));

  auto missing = EmbeddingModelManager::Create({.model_dir = "acme/gone", .settings = OnCpu()});
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(missing.status(), "models--acme--gone does not exist"));
  CHECK(Mentions(missing.status(), "HF_HUB_CACHE"));
}

}  // namespace
}  // namespace modelpool
