#include "lib/models/formats/json_file.h"

#include <sys/stat.h>

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

TEST_CASE("JsonFile::Read reads an object and its typed values") {
  const fs::path path = testing::TempDir("json_file_test_read") / "config.json";
  std::ofstream(path) << R"({"hidden_size": 32, "eps": 1e-12, "tie": true, "act": "gelu"})";
  absl::StatusOr<JsonFile> file = JsonFile::Read(path.string());
  REQUIRE(file.ok());
  CHECK(*file->Int("hidden_size") == 32);
  CHECK(*file->Number("eps") == 1e-12);
  CHECK(*file->Bool("tie"));
  CHECK(*file->String("act") == "gelu");
  CHECK(*file->Int("absent", 7) == 7);
  CHECK(file->Int("absent").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("JsonFile::Read refuses a directory where a model file should be") {
  // Every model JSON file goes through here: config.json, generation_config.json,
  // sentence_bert_config.json, tokenizer_config.json, 1_Pooling/config.json, shard indexes.
  const fs::path dir = testing::TempDir("json_file_test_directory");
  for (const char* name : {"config.json", "generation_config.json", "tokenizer_config.json"}) {
    fs::create_directory(dir / name);
    absl::StatusOr<JsonFile> read = JsonFile::Read((dir / name).string());
    CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(read.status(), (dir / name).string() + " is a directory"));
    absl::StatusOr<JsonFile> optional = JsonFile::ReadIfPresent((dir / name).string());
    CHECK(optional.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("JsonFile::Read refuses a FIFO instead of blocking on it") {
  const fs::path fifo = testing::TempDir("json_file_test_fifo") / "config.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  absl::StatusOr<JsonFile> read = JsonFile::Read(fifo.string());
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), fifo.string() + " is a FIFO"));
}

TEST_CASE("JsonFile::ReadIfPresent treats a missing file as empty, a dangling link as missing") {
  const fs::path dir = testing::TempDir("json_file_test_present");
  absl::StatusOr<JsonFile> absent = JsonFile::ReadIfPresent((dir / "absent.json").string());
  REQUIRE(absent.ok());
  CHECK(absent->json().empty());
  fs::create_symlink("../../blobs/feedface", dir / "generation_config.json");
  absl::StatusOr<JsonFile> dangling =
      JsonFile::ReadIfPresent((dir / "generation_config.json").string());
  CHECK(dangling.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(dangling.status(), "../../blobs/feedface"));
}

TEST_CASE("JsonFile::Read refuses a file over the size limit before parsing it") {
  const fs::path path = testing::TempDir("json_file_test_big") / "config.json";
  {
    std::ofstream out(path);
    out << "[";
    out << std::string(kMaxJsonFileBytes, ' ');
    out << "]";
  }
  absl::StatusOr<JsonFile> read = JsonFile::Read(path.string());
  CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(read.status(), path.string() + " is " + std::to_string(kMaxJsonFileBytes + 2)));
}

TEST_CASE("ParseJson says where text stops being JSON") {
  absl::StatusOr<nlohmann::json> parsed = ParseJson(R"({"a": 1,, })", "config.json");
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(parsed.status(), "config.json is not valid JSON (at byte 9)"));
}

TEST_CASE("ParseJson refuses nesting deeper than the limit, and accepts it up to the limit") {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(ParseJson(nested(kMaxJsonDepth), "ok.json").ok());
  absl::StatusOr<nlohmann::json> deep = ParseJson(nested(kMaxJsonDepth + 1), "deep.json");
  CHECK(deep.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(deep.status(), "deep.json nests arrays and objects deeper than"));
  // Brackets inside strings are text, not nesting.
  CHECK(ParseJson("[\"" + std::string(1000, '[') + "\\\"\"]", "strings.json").ok());
}

TEST_CASE("JsonFile::Int refuses integers outside int64 instead of wrapping them") {
  absl::StatusOr<JsonFile> file =
      JsonFile::Parse(R"({"big": 18446744073709551615, "max": 9223372036854775807})", "c.json");
  REQUIRE(file.ok());
  CHECK(*file->Int("max") == 9223372036854775807);
  absl::StatusOr<int64_t> big = file->Int("big");
  CHECK(big.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(big.status(), "c.json: big is 18446744073709551615, expected an integer in"));
  absl::StatusOr<nlohmann::json> huge = ParseJson(R"({"huge": 1e400})", "c.json");
  CHECK(huge.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(huge.status(), "c.json is not valid JSON"));
}

TEST_CASE("JsonFile errors describe a wrong value briefly") {
  absl::StatusOr<JsonFile> file = JsonFile::Parse(
      R"({"name": ")" + std::string(10000, 'x') + R"(", "list": [1, 2, 3], "obj": {}})", "c.json");
  REQUIRE(file.ok());
  absl::StatusOr<int64_t> name = file->Int("name");
  CHECK(name.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(name.status().message().size() < 200);
  CHECK(Mentions(file->Int("list").status(), "c.json: list is an array of 3, expected an integer"));
  CHECK(Mentions(file->String("obj").status(), "c.json: obj is an object of 0 keys"));
}

TEST_CASE("JsonFile::Parse refuses JSON that is not an object, saying what it is") {
  absl::StatusOr<JsonFile> file = JsonFile::Parse("[1, 2]", "modules.json");
  CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(file.status(), "modules.json is an array of 2, not a JSON object"));
}

}  // namespace
}  // namespace modelpool
