#include "lib/base/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

using testing::Mentions;

TEST_CASE("ReadRegularFile returns a file's bytes, following links") {
  const fs::path dir = testing::TempDir("file_test_read");
  std::ofstream(dir / "a.txt", std::ios::binary) << std::string("one\0two", 7);
  fs::create_symlink(dir / "a.txt", dir / "link.txt");
  absl::StatusOr<std::string> direct = ReadRegularFile((dir / "a.txt").string(), 100);
  absl::StatusOr<std::string> linked = ReadRegularFile((dir / "link.txt").string(), 100);
  REQUIRE(direct.ok());
  REQUIRE(linked.ok());
  CHECK(*direct == std::string("one\0two", 7));
  CHECK(*linked == *direct);
  std::ofstream(dir / "empty.txt");
  absl::StatusOr<std::string> empty = ReadRegularFile((dir / "empty.txt").string(), 0);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("ReadRegularFile says NotFound, naming the path, when nothing is there") {
  const fs::path path = testing::TempDir("file_test_missing") / "config.json";
  absl::StatusOr<std::string> read = ReadRegularFile(path.string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(read.status(), path.string()));
}

TEST_CASE("ReadRegularFile names both ends of a link that leads nowhere") {
  // What a Hugging Face cache looks like when a blob was never downloaded.
  const fs::path dir = testing::TempDir("file_test_dangling");
  fs::create_symlink("../blobs/0123abcd", dir / "model.safetensors");
  absl::StatusOr<std::string> read = ReadRegularFile((dir / "model.safetensors").string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(read.status(), (dir / "model.safetensors").string()));
  CHECK(Mentions(read.status(), "../blobs/0123abcd"));
}

TEST_CASE("ReadRegularFile refuses a directory") {
  const fs::path dir = testing::TempDir("file_test_directory");
  fs::create_directory(dir / "config.json");
  absl::StatusOr<std::string> read = ReadRegularFile((dir / "config.json").string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), (dir / "config.json").string() + " is a directory"));
}

TEST_CASE("ReadRegularFile refuses a FIFO without waiting for a writer") {
  const fs::path dir = testing::TempDir("file_test_fifo");
  const fs::path fifo = dir / "config.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  absl::StatusOr<std::string> read = ReadRegularFile(fifo.string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), fifo.string() + " is a FIFO"));
}

TEST_CASE("ReadRegularFile refuses a device that never ends") {
  absl::StatusOr<std::string> read = ReadRegularFile("/dev/zero", 100);
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), "/dev/zero is a character device"));
}

TEST_CASE("ReadRegularFile refuses a file over the limit, naming its size and the limit") {
  const fs::path path = testing::TempDir("file_test_big") / "vocab.txt";
  std::ofstream(path) << std::string(101, 'x');
  absl::StatusOr<std::string> read = ReadRegularFile(path.string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), path.string() + " is 101 bytes long"));
  CHECK(Mentions(read.status(), "up to 100 bytes"));
  CHECK(ReadRegularFile(path.string(), 101).ok());
}

TEST_CASE("ReadRegularFile says PermissionDenied for a file it may not read") {
  if (::geteuid() == 0) return;  // root reads everything
  const fs::path path = testing::TempDir("file_test_denied") / "config.json";
  std::ofstream(path) << "{}";
  fs::permissions(path, fs::perms::none);
  absl::StatusOr<std::string> read = ReadRegularFile(path.string(), 100);
  CHECK(read.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Mentions(read.status(), path.string()));
}

}  // namespace
}  // namespace modelpool
