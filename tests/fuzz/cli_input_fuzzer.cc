// Arbitrary bytes as an input file of the programs (examples/common/input_files.h) or of
// generate_parity (benchmarks/parity_reference.h): refused with a status naming the file, or
// read into values that keep their promises. The first byte chooses the reader:
//   0 lines of text, 1 a JSON array of strings, 2 a JSON array of token id lists,
//   3 a generate_parity reference.
// The seeds in corpus/cli_input_fuzzer are that byte followed by a real input.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "benchmarks/parity_reference.h"
#include "examples/common/input_files.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

constexpr char kSource[] = "input.json";

void CheckRefusal(const absl::Status& status) {
  modelpool::fuzz::Check(status.code() == absl::StatusCode::kInvalidArgument, "InvalidArgument");
  modelpool::fuzz::Check(status.message().find(kSource) == 0, "the error names the file");
}

void CheckIds(const std::vector<std::vector<int32_t>>& rows) {
  for (const auto& row : rows) {
    for (const int32_t id : row) modelpool::fuzz::Check(id >= 0, "ids are not negative");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  switch (modelpool::fuzz::TakeSelector(&input) % 4) {
    case 0: {
      const std::vector<std::string> lines = modelpool::cli::SplitLines(input);
      size_t bytes = 0;
      for (const std::string& line : lines) {
        modelpool::fuzz::Check(line.find('\n') == std::string::npos, "a line holds no newline");
        bytes += line.size();
      }
      modelpool::fuzz::Check(bytes <= input.size(), "lines come from the text");
      break;
    }
    case 1: {
      auto texts = modelpool::cli::ParseTexts(input, kSource);
      if (!texts.ok()) CheckRefusal(texts.status());
      break;
    }
    case 2: {
      auto ids = modelpool::cli::ParseTokenIds(input, kSource);
      if (!ids.ok()) {
        CheckRefusal(ids.status());
      } else {
        CheckIds(*ids);
      }
      break;
    }
    case 3: {
      auto reference = modelpool::bench::ParseParityReference(input, kSource);
      if (!reference.ok()) {
        CheckRefusal(reference.status());
        break;
      }
      modelpool::fuzz::Check(!reference->inputs.empty() && !reference->cases.empty(), "not empty");
      CheckIds(reference->inputs);
      for (const auto& c : reference->cases) {
        modelpool::fuzz::Check(c.sequences.size() == reference->inputs.size(), "a row per input");
        for (const auto& row : c.sequences) modelpool::fuzz::Check(!row.empty(), "rows not empty");
        CheckIds(c.sequences);
      }
      break;
    }
  }
  return 0;
}
