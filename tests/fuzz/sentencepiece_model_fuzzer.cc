// Arbitrary bytes as a SentencePiece model: refused with a status, or a tokenizer that keeps
// the invariants on a few texts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "modelpool/text/sentencepiece_tokenizer.h"
#include "tests/fuzz/fuzz_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tokenizer = modelpool::SentencePieceTokenizer::FromBytes(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", /*extra_ids=*/3);
  if (!tokenizer.ok()) return 0;
  for (const char* text : {"", "a b  c", "Hello, wörld! 你好 \xF0\x9F\x91\x8D\t\xFF end "}) {
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 8}, 1);
    modelpool::fuzz::CheckInvariants(**tokenizer, text, {.max_length = 0}, 1);
  }
  return 0;
}
