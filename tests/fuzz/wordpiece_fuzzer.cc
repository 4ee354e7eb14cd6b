// WordPiece (all-MiniLM-L6-v2's tokenizer.json) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "modelpool/text/wordpiece_tokenizer.h"
#include "tests/fuzz/fuzz_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const modelpool::WordPieceTokenizer* tokenizer = [] {
    auto loaded = modelpool::WordPieceTokenizer::FromTokenizerJson(
        MODELPOOL_SOURCE_DIR "/tests/data/text/all-MiniLM-L6-v2/tokenizer.json");
    modelpool::fuzz::Check(loaded.ok(), "tokenizer.json loads");
    return loaded->release();
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const modelpool::EncodeOptions options = modelpool::fuzz::OptionsFrom(&text);
  modelpool::fuzz::CheckInvariants(*tokenizer, text, options, /*num_special=*/2);
  if (options.add_special_tokens) {
    const auto ids = tokenizer->Encode(text, options);
    modelpool::fuzz::Check(ids.size() >= 2 && ids.front() == 101 && ids.back() == 102,
                           "[CLS] ... [SEP]");
  }
  return 0;
}
