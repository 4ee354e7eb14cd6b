// SentencePiece (t5-small's spiece.model) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "modelpool/text/sentencepiece_tokenizer.h"
#include "tests/fuzz/fuzz_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const modelpool::SentencePieceTokenizer* tokenizer = [] {
    auto loaded = modelpool::SentencePieceTokenizer::FromFile(
        MODELPOOL_SOURCE_DIR "/tests/data/text/t5-small/spiece.model",
        MODELPOOL_SOURCE_DIR "/tests/data/text/t5-small/tokenizer_config.json");
    modelpool::fuzz::Check(loaded.ok(), "spiece.model loads");
    return loaded->release();
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const modelpool::EncodeOptions options = modelpool::fuzz::OptionsFrom(&text);
  modelpool::fuzz::CheckInvariants(*tokenizer, text, options, /*num_special=*/1);
  if (options.add_special_tokens) {
    const auto ids = tokenizer->Encode(text, options);
    modelpool::fuzz::Check(!ids.empty() && ids.back() == tokenizer->eos_id(), "ends with </s>");
  }
  return 0;
}
