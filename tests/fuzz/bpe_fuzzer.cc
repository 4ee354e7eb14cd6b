// Byte-level BPE (the trained RoBERTa-layout tokenizer.json of tests/data/text/bpe) on
// arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "modelpool/text/bpe_tokenizer.h"
#include "tests/fuzz/fuzz_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const modelpool::BpeTokenizer* tokenizer = [] {
    auto loaded = modelpool::BpeTokenizer::FromTokenizerJson(MODELPOOL_SOURCE_DIR
                                                             "/tests/data/text/bpe/tokenizer.json");
    modelpool::fuzz::Check(loaded.ok(), "tokenizer.json loads");
    return loaded->release();
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const modelpool::EncodeOptions options = modelpool::fuzz::OptionsFrom(&text);
  modelpool::fuzz::CheckInvariants(*tokenizer, text, options, /*num_special=*/2);
  if (options.add_special_tokens) {
    const auto ids = tokenizer->Encode(text, options);
    modelpool::fuzz::Check(ids.size() >= 2 && ids.front() == 0 && ids.back() == 2, "<s> ... </s>");
  }
  return 0;
}
