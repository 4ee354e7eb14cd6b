#include "examples/common/input_files.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/status.h"
#include "tests/testing/temp_dir.h"

namespace modelpool::cli {
namespace {

namespace fs = std::filesystem;

using testing::Mentions;

TEST_CASE("SplitLines keeps blank lines, so that output lines match input lines") {
  CHECK(SplitLines("a\n\nb\n") == std::vector<std::string>{"a", "", "b"});
  CHECK(SplitLines("a\r\n\r\nb") == std::vector<std::string>{"a", "", "b"});
  CHECK(SplitLines("\n") == std::vector<std::string>{""});
  CHECK(SplitLines("").empty());
}

TEST_CASE("ReadLines refuses a directory instead of reading zero texts") {
  const fs::path dir = testing::TempDir("input_files_test_dir");
  absl::StatusOr<std::vector<std::string>> lines = ReadLines(dir.string());
  CHECK(lines.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(lines.status(), dir.string() + " is a directory"));
}

TEST_CASE("ReadTexts and ReadTokenIds refuse a directory and a FIFO, naming them") {
  const fs::path dir = testing::TempDir("input_files_test_special");
  fs::create_directory(dir / "texts.json");
  REQUIRE(::mkfifo((dir / "ids.json").c_str(), 0600) == 0);
  absl::StatusOr<std::vector<std::string>> texts = ReadTexts((dir / "texts.json").string());
  CHECK(texts.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(texts.status(), (dir / "texts.json").string() + " is a directory"));
  absl::StatusOr<std::vector<std::vector<int32_t>>> ids = ReadTokenIds((dir / "ids.json").string());
  CHECK(ids.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(ids.status(), (dir / "ids.json").string() + " is a FIFO"));
  absl::StatusOr<std::vector<std::string>> missing = ReadTexts((dir / "none.json").string());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("ParseTexts takes an array of strings and names anything else") {
  CHECK(*ParseTexts(R"(["a", "", "c"])", "t.json") == std::vector<std::string>{"a", "", "c"});
  absl::StatusOr<std::vector<std::string>> object = ParseTexts(R"({"a": 1})", "t.json");
  CHECK(object.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(object.status(), "t.json is an object of 1 keys, expected a JSON array"));
  absl::StatusOr<std::vector<std::string>> number = ParseTexts(R"(["a", 7])", "t.json");
  CHECK(number.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(number.status(), "t.json: element [1] is 7, expected a string"));
  absl::StatusOr<std::vector<std::string>> broken = ParseTexts(R"(["a")", "t.json");
  CHECK(broken.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(broken.status(), "t.json is not valid JSON"));
}

TEST_CASE("ParseTokenIds takes token ids exactly as written") {
  absl::StatusOr<std::vector<std::vector<int32_t>>> ids =
      ParseTokenIds("[[0, 125, 2147483647], []]", "ids.json");
  REQUIRE(ids.ok());
  CHECK(*ids == std::vector<std::vector<int32_t>>{{0, 125, 2147483647}, {}});
}

TEST_CASE("ParseTokenIds refuses ids that would wrap, round or convert, naming the element") {
  // Each of these used to become a valid-looking id: 4294967421 wrapped to 125, 125.7 was
  // truncated to 125 and true read as 1.
  for (const auto& [json, shown] : std::vector<std::pair<std::string, std::string>>{
           {"[[1, 4294967421]]", "[0][1] is 4294967421"},
           {"[[1, 125.7]]", "[0][1] is 125.7"},
           {"[[1, 125.0]]", "[0][1] is 125.0"},
           {"[[1], [true]]", "[1][0] is true"},
           {"[[2147483648]]", "[0][0] is 2147483648"},
           {"[[-1]]", "[0][0] is -1"},
           {"[[\"7\"]]", "[0][0] is \"7\""},
           {"[[18446744073709551616]]", "[0][0] is 1.8446744073709552e+19"}}) {
    absl::StatusOr<std::vector<std::vector<int32_t>>> ids = ParseTokenIds(json, "ids.json");
    INFO(json);
    CHECK(ids.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(ids.status(), "ids.json: element " + shown + ", expected a token id"));
  }
  absl::StatusOr<std::vector<std::vector<int32_t>>> flat = ParseTokenIds("[1, 2]", "ids.json");
  CHECK(flat.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(flat.status(), "ids.json: element [0] is 1, expected an array of token ids"));
}

}  // namespace
}  // namespace modelpool::cli
