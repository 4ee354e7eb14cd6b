#ifndef MODELPOOL_BENCHMARKS_CORPUS_H_
#define MODELPOOL_BENCHMARKS_CORPUS_H_

#include <string>
#include <vector>

#include "examples/common/command_line.h"
#include "examples/common/input_files.h"

namespace modelpool::bench {

// The documents of a corpus file, one a line; blank lines are skipped. `cli::Fail`s naming the
// file when it cannot be read or holds no document.
inline std::vector<std::string> ReadCorpus(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> lines = cli::ReadLines(path);
  if (!lines.ok()) cli::Fail(lines.status());
  std::erase_if(*lines, [](const std::string& line) { return line.empty(); });
  if (lines->empty()) cli::Fail(path + " holds no document");
  return *std::move(lines);
}

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_CORPUS_H_
