#ifndef MODELPOOL_BENCHMARKS_PARITY_REFERENCE_H_
#define MODELPOOL_BENCHMARKS_PARITY_REFERENCE_H_

// The reference file of generate_parity, as tools/t5_reference_ids.py writes it:
// {"inputs": [[ids]], "eos_token_id": 1, "cases": [{"name", "options", "sequences"}]}.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelpool::bench {

using TokenRows = std::vector<std::vector<int32_t>>;

// One generate() call of the reference: its options and transformers' rows (the decoder start
// token first), one per input.
struct ParityCase {
  std::string name;
  int max_new_tokens = 0;
  int num_beams = 1;
  std::optional<int> min_new_tokens;
  std::optional<int> no_repeat_ngram_size;
  std::optional<double> length_penalty;
  TokenRows sequences;
};

struct ParityReference {
  TokenRows inputs;
  int32_t eos_token_id = 1;
  std::vector<ParityCase> cases;
};

// ParseParityReference()
//
// `InvalidArgument`, naming `source` and the key or element, for anything but a reference
// with at least one input and one case, options in range, and one non-empty sequence per
// input in every case.
absl::StatusOr<ParityReference> ParseParityReference(std::string_view text,
                                                     const std::string& source);
absl::StatusOr<ParityReference> ReadParityReference(const std::string& path);

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_PARITY_REFERENCE_H_
