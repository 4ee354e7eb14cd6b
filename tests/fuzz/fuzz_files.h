#ifndef MODELPOOL_TESTS_FUZZ_FUZZ_FILES_H_
#define MODELPOOL_TESTS_FUZZ_FUZZ_FILES_H_

// For fuzzers of readers that take a folder: a private folder per process (in memory where
// /dev/shm exists) and a way to put bytes in a file there.

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_options.h"

namespace modelpool::fuzz {

// A folder made once per process and never removed: a fuzzer ends by being killed.
inline const std::string& FuzzDir() {
  static const std::string dir = [] {
    std::string pattern = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
                          std::string("/modelpool_fuzz_XXXXXX");
    Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    return pattern;
  }();
  return dir;
}

// Replaces `path` with a regular file holding `bytes`.
inline void WriteFile(const std::string& path, std::string_view bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  Check(fd >= 0, "open for writing");
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    Check(n > 0, "write");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  close(fd);
}

// The first byte of `input` (removed), or 0 for an empty input.
inline unsigned char TakeSelector(std::string_view* input) {
  if (input->empty()) return 0;
  const auto byte = static_cast<unsigned char>((*input)[0]);
  input->remove_prefix(1);
  return byte;
}

}  // namespace modelpool::fuzz

#endif  // MODELPOOL_TESTS_FUZZ_FUZZ_FILES_H_
