#include "lib/models/formats/safetensors.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;
using testing::Mentions;

// The bytes of a safetensors file with `header` and `data_bytes` bytes of data (0, 1, 2...).
std::vector<uint8_t> FileBytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes;
  bytes.reserve(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  for (char c : header) bytes.push_back(static_cast<uint8_t>(c));
  for (size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<uint8_t>(i));
  return bytes;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::FromBuffer(absl::MakeConstSpan(bytes), "test.safetensors");
}

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

const char* kValidHeader = R"({"__metadata__":{"format":"pt"},)"
                           R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                           R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},)"
                           R"("empty":{"dtype":"F16","shape":[0,5],"data_offsets":[32,32]}})";

TEST_CASE("A valid file lists its tensors, metadata and data") {
  const std::vector<uint8_t> bytes = FileBytes(kValidHeader, 32);
  auto file = Parse(bytes);
  REQUIRE(file.ok());
  CHECK((*file)->tensors().size() == 3);
  CHECK((*file)->metadata().at("format") == "pt");
  const SafetensorsTensor* a = (*file)->Find("a");
  REQUIRE(a != nullptr);
  CHECK(a->shape == std::vector<int64_t>{2, 3});
  CHECK(a->num_elements() == 6);
  CHECK((*file)->Data(*a).size() == 24);
  const SafetensorsTensor* b = (*file)->Find("b");
  REQUIRE(b != nullptr);
  CHECK(b->dtype == SafetensorsDType::kBF16);
  CHECK((*file)->Data(*b)[0] == 24);
  CHECK((*file)->Find("missing") == nullptr);
}

TEST_CASE("Malformed headers are InvalidArgument naming the file and the tensor") {
  struct Case {
    const char* what;
    std::string header;
    size_t data;
    const char* expect;
  };
  const Case cases[] = {
      {"not json", "{\"a\":", 0, "not valid JSON"},
      {"not an object", "[1,2]", 0, "not a JSON object"},
      {"unknown dtype", R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': unknown dtype 'F12'"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "negative"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4,
       "need 8 bytes but data_offsets span 4"},
      {"past the end", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, "truncated"},
      {"reversed", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4, "end before"},
      {"overflow", R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
       8, "too large"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlap"},
      {"bad offsets", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, "data_offsets"},
      {"bad metadata", R"({"__metadata__":{"k":1}})", 0, "__metadata__"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto file = Parse(FileBytes(c.header, c.data));
    REQUIRE_FALSE(file.ok());
    CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(MessageOf(file.status()),
               Catch::Contains("test.safetensors") && Catch::Contains(c.expect));
  }
}

TEST_CASE("A truncated file or a lying header size is rejected before any read") {
  CHECK(Parse({1, 2, 3}).status().code() == absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> bytes = FileBytes(kValidHeader, 32);
  bytes.resize(20);  // cut inside the header
  CHECK_THAT(MessageOf(Parse(bytes).status()), Catch::Contains("truncated"));
  std::vector<uint8_t> huge(16, 0);
  huge[7] = 0x7f;  // header size near 2^63
  CHECK(Parse(huge).status().code() == absl::StatusCode::kInvalidArgument);
}

// A folder of files for one test, removed at the end of it.
class Folder {
 public:
  explicit Folder(const std::string& name = "st") : path_(testing::TempDir(name)) {}
  ~Folder() { testing::RemoveTree(path_); }
  void Write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::ofstream(path_ / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

TEST_CASE("Open maps a file from disk; a missing file is NotFound") {
  Folder dir;
  dir.Write("model.safetensors", FileBytes(kValidHeader, 32));
  auto file = SafetensorsFile::Open(dir.path() + "/model.safetensors");
  REQUIRE(file.ok());
  CHECK((*file)->Data(*(*file)->Find("a"))[5] == 5);
  CHECK(SafetensorsFile::Open(dir.path() + "/nope.safetensors").status().code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("Open refuses a FIFO, a directory and a dangling link, naming them, without blocking") {
  Folder dir("st_fifo");
  const std::string fifo = dir.path() + "/model.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto from_fifo = SafetensorsCheckpoint::Open(dir.path());
  CHECK(from_fifo.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(from_fifo.status(), fifo + " is a FIFO"));

  Folder folder("st_directory");
  fs::create_directory(folder.path() + "/model.safetensors");
  auto from_folder = SafetensorsFile::Open(folder.path() + "/model.safetensors");
  CHECK(from_folder.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(from_folder.status(), "model.safetensors is a directory"));

  // A Hugging Face cache whose blob never arrived.
  Folder cache("st_dangling");
  fs::create_symlink("../../blobs/3f2a", cache.path() + "/model.safetensors");
  auto dangling = SafetensorsCheckpoint::Open(cache.path());
  CHECK(dangling.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(dangling.status(), "model.safetensors is a link to ../../blobs/3f2a"));
}

TEST_CASE("A checkpoint reads model.safetensors or the shards of an index") {
  Folder dir;
  dir.Write("shard-1.safetensors",
            FileBytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  dir.Write("shard-2.safetensors",
            FileBytes(R"({"y":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4));
  dir.Write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"shard-1.safetensors","y":"shard-2.safetensors"}})"));
  auto checkpoint = SafetensorsCheckpoint::Open(dir.path());
  REQUIRE(checkpoint.ok());
  CHECK((*checkpoint)->Find("x").tensor != nullptr);
  CHECK((*checkpoint)->Find("y").tensor->dtype == SafetensorsDType::kF16);
  CHECK((*checkpoint)->Find("z").tensor == nullptr);
  CHECK((*checkpoint)->names().size() == 2);
  CHECK((*checkpoint)->total_bytes() == 8);
}

TEST_CASE("An index that points outside the folder or at a missing tensor is refused") {
  Folder dir;
  dir.Write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"../../etc/passwd"}})"));
  CHECK(SafetensorsCheckpoint::Open(dir.path()).status().code() ==
        absl::StatusCode::kInvalidArgument);
  dir.Write("shard.safetensors",
            FileBytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  dir.Write("model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"shard.safetensors","w":"shard.safetensors"}})"));
  CHECK_THAT(MessageOf(SafetensorsCheckpoint::Open(dir.path()).status()), Catch::Contains("'w'"));
}

TEST_CASE("A folder with only pytorch_model.bin is refused with the reason") {
  Folder dir;
  dir.Write("pytorch_model.bin", std::string("pickle"));
  auto checkpoint = SafetensorsCheckpoint::Open(dir.path());
  REQUIRE_FALSE(checkpoint.ok());
  CHECK(checkpoint.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(MessageOf(checkpoint.status()), Catch::Contains("arbitrary code"));
  Folder empty("st_empty");
  CHECK(SafetensorsCheckpoint::Open(empty.path() + "/x").status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelpool
