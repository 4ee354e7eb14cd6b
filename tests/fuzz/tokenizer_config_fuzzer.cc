// Arbitrary bytes as the tokenizer_config.json of a model folder whose tokenizer.json is
// bert-tiny-cls's: refused with a status naming the folder, or a tokenizer that keeps the
// invariants on a few texts. (tokenizer_json_fuzzer fuzzes tokenizer.json itself.) The seed
// in corpus/tokenizer_config_fuzzer is a byte, ignored, then bert-tiny-cls's file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "modelpool/text/tokenizer.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

namespace fs = std::filesystem;

const std::string& Folder() {
  static const std::string dir = [] {
    const std::string folder = modelpool::fuzz::FuzzDir() + "/tokenizer_config";
    fs::create_directories(folder);
    fs::copy_file(MODELPOOL_SOURCE_DIR "/tests/data/models/bert-tiny-cls/tokenizer.json",
                  folder + "/tokenizer.json", fs::copy_options::overwrite_existing);
    return folder;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  modelpool::fuzz::TakeSelector(&input);
  modelpool::fuzz::WriteFile(Folder() + "/tokenizer_config.json", input);
  auto tokenizer = modelpool::LoadTokenizer(Folder());
  if (!tokenizer.ok()) {
    modelpool::fuzz::Check(tokenizer.status().message().find(Folder()) != absl::string_view::npos,
                           "the error names the folder");
    return 0;
  }
  for (const char* text : {"", "Hello, world!", "a b  c \xF0\x9F\x91\x8D\t\xFF end "}) {
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 8}, 2);
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 0}, 2);
  }
  return 0;
}
