// Arbitrary bytes as one file of a model folder, the others being real: refused with a status
// that names the folder, or read. The first byte chooses the file:
//   0  config.json of a T5 model (no generation_config.json)
//   1  generation_config.json beside a real T5 config.json
//   2  model.safetensors.index.json beside the two real shards of bert-tiny-mean
// The seeds in corpus/model_files_fuzzer are that byte followed by a file of tests/data/models.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "lib/models/formats/json_file.h"
#include "lib/models/formats/safetensors.h"
#include "lib/models/t5/t5_config.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

namespace fs = std::filesystem;

const std::string kModels = MODELPOOL_SOURCE_DIR "/tests/data/models";

// One folder per kind of file, set up once.
struct Folders {
  std::string t5_config, t5_generation, sharded;
};

const Folders& MakeFolders() {
  static const Folders folders = [] {
    const std::string root = modelpool::fuzz::FuzzDir();
    Folders f{root + "/t5_config", root + "/t5_generation", root + "/sharded"};
    for (const std::string& dir : {f.t5_config, f.t5_generation, f.sharded}) {
      fs::create_directories(dir);
    }
    fs::copy_file(kModels + "/t5-tiny-relu/config.json", f.t5_generation + "/config.json",
                  fs::copy_options::overwrite_existing);
    for (const char* shard :
         {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      fs::copy_file(kModels + "/bert-tiny-mean/" + shard, f.sharded + "/" + shard,
                    fs::copy_options::overwrite_existing);
    }
    return f;
  }();
  return folders;
}

void CheckNamed(const absl::Status& status, const std::string& dir) {
  if (status.ok()) return;
  modelpool::fuzz::Check(status.message().find(dir) != absl::string_view::npos,
                         "the error names the folder");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const Folders& folders = MakeFolders();
  switch (modelpool::fuzz::TakeSelector(&input) % 3) {
    case 0: {
      modelpool::fuzz::WriteFile(folders.t5_config + "/config.json", input);
      absl::StatusOr<modelpool::T5Files> files = modelpool::ReadT5Files(folders.t5_config);
      CheckNamed(files.status(), folders.t5_config);
      if (files.ok()) {
        const modelpool::T5Config& c = files->config;
        modelpool::fuzz::Check(c.vocab_size > 0 && c.d_model > 0 && c.num_heads > 0 && c.d_kv > 0 &&
                                   c.num_layers > 0 && c.num_decoder_layers > 0,
                               "sizes are positive");
        modelpool::fuzz::Check(!c.eos_token_ids.empty(), "an end-of-sequence id");
      }
      break;
    }
    case 1: {
      modelpool::fuzz::WriteFile(folders.t5_generation + "/generation_config.json", input);
      CheckNamed(modelpool::ReadT5Files(folders.t5_generation).status(), folders.t5_generation);
      break;
    }
    case 2: {
      modelpool::fuzz::WriteFile(folders.sharded + "/model.safetensors.index.json", input);
      auto checkpoint = modelpool::SafetensorsCheckpoint::Open(folders.sharded);
      CheckNamed(checkpoint.status(), folders.sharded);
      if (checkpoint.ok()) {
        for (const std::string& name : (*checkpoint)->names()) {
          modelpool::fuzz::Check((*checkpoint)->Find(name).tensor != nullptr,
                                 "listed tensors exist");
        }
      }
      break;
    }
  }
  return 0;
}
