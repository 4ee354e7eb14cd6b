// Arbitrary bytes as a tokenizer.json, through LoadTokenizer (which reads model.type): refused
// with a status, or a tokenizer that keeps the invariants on a few texts.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "modelpool/text/tokenizer.h"
#include "tests/fuzz/fuzz_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/modelpool_tokenizer_json_fuzzer_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto tokenizer = modelpool::LoadTokenizer(path);
  if (!tokenizer.ok()) return 0;
  for (const char* text : {"", "a b  c", "Hello, wörld! 你好 \xF0\x9F\x91\x8D\t\xFF end <s>"}) {
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 8}, 1 << 20);
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 0}, 1 << 20);
  }
  return 0;
}
