#ifndef MODELPOOL_TESTS_TESTING_TEMP_DIR_H_
#define MODELPOOL_TESTS_TESTING_TEMP_DIR_H_

// Folders under the system's temporary directory for tests that write files.

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

namespace modelpool::testing {

// Removes `dir` and everything under it, if it exists. Not `std::filesystem::remove_all`:
// PyTorch's libtorch.so (2.11) exports its own copy of it, which the test binaries bind to
// first and which crashes on a folder that is not empty.
inline void RemoveTree(const std::filesystem::path& dir) {
  nftw(
      dir.c_str(),
      [](const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); },
      /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

// An empty folder `modelpool_<name>_<pid>` under the temporary directory; whatever an earlier
// call with the same name left there is removed, and the folder is removed when the test
// binary exits. Call it from the main thread.
inline std::filesystem::path TempDir(const std::string& name) {
  struct Made {
    std::set<std::filesystem::path> dirs;
    ~Made() {
      for (const auto& dir : dirs) RemoveTree(dir);
    }
  };
  static Made made;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("modelpool_" + name + "_" + std::to_string(::getpid()));
  RemoveTree(dir);
  std::filesystem::create_directories(dir);
  made.dirs.insert(dir);
  return dir;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TESTING_TEMP_DIR_H_
