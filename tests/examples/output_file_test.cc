#include "examples/common/output_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool::cli {
namespace {

namespace fs = std::filesystem;

using testing::Mentions;

std::string Contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("WriteOutputFile writes the pieces in order and leaves no temporary file") {
  const fs::path dir = testing::TempDir("output_file_test_write");
  REQUIRE(WriteOutputFile((dir / "out.json").string(), {"[1,", "2]", "\n"}).ok());
  CHECK(Contents(dir / "out.json") == "[1,2]\n");
  REQUIRE(WriteOutputFile((dir / "out.json").string(), {"[]"}).ok());
  CHECK(Contents(dir / "out.json") == "[]");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
}

TEST_CASE("WriteOutputFile reports a full device instead of passing for success") {
  // `embed --output /dev/full` used to print success and exit 0.
  if (!fs::exists("/dev/full")) return;
  absl::Status status = WriteOutputFile("/dev/full", {"some vectors"});
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
  CHECK(Mentions(status, "cannot write /dev/full"));
  CHECK(fs::is_character_file("/dev/full"));  // written in place, never replaced
}

TEST_CASE("WriteOutputFile names a folder that does not exist") {
  const fs::path path = testing::TempDir("output_file_test_missing") / "no" / "out.npy";
  absl::Status status = WriteOutputFile(path.string(), {"x"});
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(status, path.string()));
}

TEST_CASE("WriteOutputFile refuses a directory and leaves it alone") {
  const fs::path dir = testing::TempDir("output_file_test_dir");
  fs::create_directory(dir / "out.json");
  absl::Status status = WriteOutputFile((dir / "out.json").string(), {"x"});
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(status, (dir / "out.json").string() + ": it is a directory"));
  CHECK(fs::is_directory(dir / "out.json"));
}

TEST_CASE("WriteOutputFile keeps the old file's permissions and writes through a link") {
  const fs::path dir = testing::TempDir("output_file_test_link");
  std::ofstream(dir / "real.txt") << "old";
  fs::permissions(dir / "real.txt",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  fs::create_symlink("real.txt", dir / "link.txt");
  REQUIRE(WriteOutputFile((dir / "link.txt").string(), {"new"}).ok());
  CHECK(fs::is_symlink(dir / "link.txt"));
  CHECK(Contents(dir / "real.txt") == "new");
  CHECK(fs::status(dir / "real.txt").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("WriteOutputFile overwrites a file in place where its folder takes no new file") {
  if (::geteuid() == 0) return;  // root creates files anywhere
  const fs::path dir = testing::TempDir("output_file_test_read_only_dir");
  std::ofstream(dir / "out.json") << "old contents, longer than the new";
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  const absl::Status status = WriteOutputFile((dir / "out.json").string(), {"new"});
  fs::permissions(dir, fs::perms::owner_all);
  REQUIRE(status.ok());
  CHECK(Contents(dir / "out.json") == "new");
}

}  // namespace
}  // namespace modelpool::cli
