#include "modelpool/text/wordpiece_tokenizer.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"
#include "tests/text/reference_check.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

using testing::LoadFixture;
using testing::TextDataPath;

std::string WriteTemp(const std::string& name, const std::string& contents) {
  static const auto dir = testing::TempDir("wordpiece_test");
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 then pieces.
std::unique_ptr<WordPieceTokenizer> SmallTokenizer() {
  const std::string vocab =
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n,\n!\n##s\ncafe\na\n##a\n";
  auto tokenizer = WordPieceTokenizer::FromVocabTxt(WriteTemp("vocab.txt", vocab));
  REQUIRE(tokenizer.ok());
  return std::move(*tokenizer);
}

const EncodeOptions kPlain{.max_length = 0, .truncation = false, .add_special_tokens = false};

TEST_CASE("WordPieceTokenizer takes the longest piece first, then ## continuations") {
  auto tokenizer = SmallTokenizer();
  CHECK(tokenizer->Encode("unaffable", kPlain) == std::vector<int32_t>{5, 6, 7});
  CHECK(tokenizer->Encode("Hello, HELLOs!", kPlain) == std::vector<int32_t>{8, 9, 8, 11, 10});
  CHECK(tokenizer->Encode("Café", kPlain) == std::vector<int32_t>{12});
  CHECK(tokenizer->Encode("unknownword", kPlain) == std::vector<int32_t>{1});
  CHECK(tokenizer->Encode("", {}) == std::vector<int32_t>{2, 3});
}

TEST_CASE("WordPieceTokenizer makes a word over 100 characters one unk") {
  auto tokenizer = SmallTokenizer();
  CHECK(tokenizer->Encode(std::string(100, 'a'), kPlain).size() == 100);
  CHECK(tokenizer->Encode(std::string(101, 'a'), kPlain) == std::vector<int32_t>{1});
}

TEST_CASE("WordPieceTokenizer finds special tokens in the raw text") {
  auto tokenizer = SmallTokenizer();
  CHECK(tokenizer->Encode("hello[SEP]a [MASK]", kPlain) == std::vector<int32_t>{8, 3, 13, 4});
  // Lowercase text is not the special token.
  CHECK(tokenizer->Encode("[sep]", kPlain) == std::vector<int32_t>{1, 1, 1});
}

TEST_CASE("WordPieceTokenizer truncation keeps [CLS] and [SEP]") {
  auto tokenizer = SmallTokenizer();
  bool truncated = false;
  const auto ids = tokenizer->Encode("a a a a a a", {.max_length = 4}, &truncated);
  CHECK(ids == std::vector<int32_t>{2, 13, 13, 3});
  CHECK(truncated);
  CHECK(tokenizer->Encode("a a", {.max_length = 4}, &truncated) ==
        std::vector<int32_t>{2, 13, 13, 3});
  CHECK_FALSE(truncated);
}

TEST_CASE("WordPieceTokenizer decodes as the WordPiece decoder does") {
  auto tokenizer = SmallTokenizer();
  CHECK(tokenizer->Decode({2, 5, 6, 7, 9, 8, 11, 10, 3}) == "unaffable, hellos!");
  CHECK(tokenizer->Decode({2, 8, 3, 99, -1}, false) == "[CLS] hello [SEP]");
}

TEST_CASE("WordPieceTokenizer names what it refuses") {
  SECTION("missing file") {
    auto tokenizer = WordPieceTokenizer::FromTokenizerJson("/nonexistent/tokenizer.json");
    CHECK(tokenizer.status().code() == absl::StatusCode::kNotFound);
  }
  const auto refused = [](const std::string& json, const std::string& expected_words) {
    const std::string path = WriteTemp("tokenizer.json", json);
    auto tokenizer = WordPieceTokenizer::FromTokenizerJson(path);
    REQUIRE_FALSE(tokenizer.ok());
    CHECK(tokenizer.status().code() == absl::StatusCode::kInvalidArgument);
    INFO(tokenizer.status().message());
    CHECK(std::string(tokenizer.status().message()).find(expected_words) != std::string::npos);
    CHECK(std::string(tokenizer.status().message()).find(path) != std::string::npos);
  };
  const std::string model = R"("model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}})";
  SECTION("not JSON") { refused("{", "not a JSON object"); }
  SECTION("another model") {
    refused(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})", "model `BPE`");
  }
  SECTION("another normalizer") {
    refused(
        "{" + model +
            R"(, "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "BertPreTokenizer"}})",
        "normalizer `NFC`");
  }
  SECTION("another pre-tokenizer") {
    refused("{" + model + R"(, "pre_tokenizer": {"type": "Whitespace"}})",
            "pre_tokenizer `Whitespace`");
  }
  SECTION("post-processor id out of range") {
    refused(
        "{" + model +
            R"(, "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 7], "cls": ["[CLS]", 0]}})",
        "out of range");
  }
  SECTION("no unk token") {
    refused(
        R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "BertPreTokenizer"}})",
        "unk token");
  }
}

TEST_CASE("WordPieceTokenizer matches a single_word added token only as a whole word") {
  const std::string path =
      WriteTemp("single_word.json",
                R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1, "b": 2, "x": 3}},)"
                R"( "pre_tokenizer": {"type": "BertPreTokenizer"}, "added_tokens": [)"
                R"({"id": 3, "content": "x", "single_word": true, "normalized": false}]})");
  auto tokenizer = WordPieceTokenizer::FromTokenizerJson(path);
  REQUIRE(tokenizer.ok());
  const EncodeOptions options{.max_length = 0, .add_special_tokens = false};
  CHECK((*tokenizer)->Encode("a x b", options) == std::vector<int32_t>{1, 3, 2});
  CHECK((*tokenizer)->Encode("x", options) == std::vector<int32_t>{3});
  CHECK((*tokenizer)->Encode("axb", options) == std::vector<int32_t>{0});
}

TEST_CASE("WordPieceTokenizer reads tokenizer_config.json") {
  auto tokenizer =
      WordPieceTokenizer::FromTokenizerJson(TextDataPath("all-MiniLM-L6-v2/tokenizer.json"),
                                            TextDataPath("all-MiniLM-L6-v2/tokenizer_config.json"));
  REQUIRE(tokenizer.ok());
  CHECK((*tokenizer)->model_max_length() == 256);
  CHECK((*tokenizer)->vocab_size() == 30522);
  CHECK((*tokenizer)->pad_id() == 0);
  CHECK((*tokenizer)->TokenToId("[CLS]") == 101);
}

TEST_CASE("WordPieceTokenizer gives the ids of tokenizers (bench vocab.txt)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("wordpiece_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = WordPieceTokenizer::FromVocabTxt(TextDataPath("bench_vocab.txt"));
  REQUIRE(tokenizer.ok());
  INFO("reference: " << expected->at("reference"));
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("bench_vocab"));
}

TEST_CASE("WordPieceTokenizer gives the ids of tokenizers (all-MiniLM-L6-v2 tokenizer.json)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("wordpiece_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer =
      WordPieceTokenizer::FromTokenizerJson(TextDataPath("all-MiniLM-L6-v2/tokenizer.json"));
  REQUIRE(tokenizer.ok());
  INFO("reference: " << expected->at("reference"));
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("minilm"));
}

}  // namespace
}  // namespace modelpool
