#ifndef MODELPOOL_TESTS_FUZZ_FUZZ_OPTIONS_H_
#define MODELPOOL_TESTS_FUZZ_FUZZ_OPTIONS_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "modelpool/text/tokenizer.h"

namespace modelpool::fuzz {

// The first byte of a fuzz input chooses the options; the rest is the text.
inline EncodeOptions OptionsFrom(std::string_view* input) {
  EncodeOptions options;
  if (input->empty()) return options;
  const auto byte = static_cast<unsigned char>((*input)[0]);
  input->remove_prefix(1);
  options.max_length = byte & 0x1F;  // 0 (no limit) to 31
  options.truncation = (byte & 0x20) != 0;
  options.add_special_tokens = (byte & 0x40) != 0;
  return options;
}

inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// What holds for any tokenizer and any text: ids in range, truncation respected, the same ids
// from EncodeBatch, and decoding that does not crash.
inline void CheckInvariants(const Tokenizer& tokenizer, std::string_view text,
                            const EncodeOptions& options, size_t num_special) {
  bool truncated = false;
  const std::vector<int32_t> ids = tokenizer.Encode(text, options, &truncated);
  for (const int32_t id : ids) Check(id >= 0 && id < tokenizer.vocab_size(), "id in range");
  if (options.truncation && options.max_length > 0) {
    Check(ids.size() <= std::max<size_t>(options.max_length, num_special), "truncation");
  }
  Check(!truncated || (options.truncation && options.max_length > 0), "truncated flag");
  const std::string copy(text);
  const EncodedBatch batch = tokenizer.EncodeBatch({&copy, 1}, options);
  Check(batch.ids.size() == 1 && batch.ids[0] == ids, "EncodeBatch equals Encode");
  tokenizer.Decode(ids, true);
  tokenizer.Decode(ids, false);
}

}  // namespace modelpool::fuzz

#endif  // MODELPOOL_TESTS_FUZZ_FUZZ_OPTIONS_H_
