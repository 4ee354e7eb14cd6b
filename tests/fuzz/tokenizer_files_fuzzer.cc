// Arbitrary bytes as a tokenizer file of a model folder, the other file being real: refused
// with a status, or a tokenizer that keeps the invariants on a few texts. The first byte
// chooses the file:
//   0  tokenizer.json beside bert-tiny-cls's tokenizer_config.json
//   1  tokenizer_config.json beside bert-tiny-cls's tokenizer.json
// The seeds in corpus/tokenizer_files_fuzzer are that byte followed by a real file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "modelpool/text/tokenizer.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

namespace fs = std::filesystem;

const std::string kBert = MODELPOOL_SOURCE_DIR "/tests/data/models/bert-tiny-cls";

struct Folders {
  std::string tokenizer_json, tokenizer_config;
};

const Folders& MakeFolders() {
  static const Folders folders = [] {
    const std::string root = modelpool::fuzz::FuzzDir();
    Folders f{root + "/tokenizer_json", root + "/tokenizer_config"};
    fs::create_directories(f.tokenizer_json);
    fs::create_directories(f.tokenizer_config);
    fs::copy_file(kBert + "/tokenizer_config.json", f.tokenizer_json + "/tokenizer_config.json",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(kBert + "/tokenizer.json", f.tokenizer_config + "/tokenizer.json",
                  fs::copy_options::overwrite_existing);
    return f;
  }();
  return folders;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const Folders& folders = MakeFolders();
  const bool config = modelpool::fuzz::TakeSelector(&input) % 2 == 1;
  const std::string& dir = config ? folders.tokenizer_config : folders.tokenizer_json;
  modelpool::fuzz::WriteFile(dir + (config ? "/tokenizer_config.json" : "/tokenizer.json"), input);
  auto tokenizer = modelpool::LoadTokenizer(dir);
  if (!tokenizer.ok()) {
    modelpool::fuzz::Check(tokenizer.status().message().find(dir) != absl::string_view::npos,
                           "the error names the folder");
    return 0;
  }
  for (const char* text : {"", "Hello, world!", "a b  c \xF0\x9F\x91\x8D\t\xFF end "}) {
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 8}, 2);
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 0}, 2);
  }
  return 0;
}
