#include "modelpool/text/unigram_tokenizer.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "modelpool/text/sentencepiece_tokenizer.h"
#include "tests/testing/temp_dir.h"
#include "tests/text/reference_check.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

using testing::LoadFixture;
using testing::TextDataPath;

std::string WriteTemp(const std::string& name, const std::string& contents) {
  static const auto dir = testing::TempDir("unigram_test");
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

const EncodeOptions kPlain{.max_length = 0, .truncation = false, .add_special_tokens = false};

// <unk>=0 </s>=1 ▁=2 ▁a=3 b=4 ▁ab=5 a=6.
std::string TinyJson(const std::string& model_extra, const std::string& extra = "") {
  return R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["</s>", 0],)"
         R"( ["\u2581", -3], ["\u2581a", -2], ["b", -2], ["\u2581ab", -3.5], ["a", -4]])" +
         model_extra +
         R"(}, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",)"
         R"( "prepend_scheme": "always", "split": true}, "decoder": {"type": "Metaspace",)"
         R"( "replacement": "\u2581", "prepend_scheme": "always", "split": true},)"
         R"( "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A"}},)"
         R"( {"SpecialToken": {"id": "</s>"}}], "special_tokens": {"</s>": {"ids": [1]}}},)"
         R"( "added_tokens": [{"id": 1, "content": "</s>", "special": true, "normalized": false}])" +
         extra + "}";
}

TEST_CASE("UnigramTokenizer takes the segmentation of highest score, word by word") {
  auto tokenizer = UnigramTokenizer::FromTokenizerJson(WriteTemp("tiny.json", TinyJson("")));
  REQUIRE(tokenizer.ok());
  // "▁ab" alone scores -3.5, "▁a" "b" -4: the single piece wins.
  CHECK((*tokenizer)->Encode("ab", kPlain) == std::vector<int32_t>{5});
  CHECK((*tokenizer)->Encode("ab ba", kPlain) == std::vector<int32_t>{5, 2, 4, 6});
  // Unknown characters in a row are one unk id; </s> closes the text.
  CHECK((*tokenizer)->Encode("xyz", {.max_length = 0}) == std::vector<int32_t>{2, 0, 1});
  CHECK((*tokenizer)->Decode({5, 2, 4, 6, 1}) == "ab ba");
  CHECK((*tokenizer)->Decode({5, 1}, false) == "ab</s>");
}

TEST_CASE("UnigramTokenizer truncation keeps </s>") {
  auto tokenizer = UnigramTokenizer::FromTokenizerJson(WriteTemp("tiny.json", TinyJson("")));
  REQUIRE(tokenizer.ok());
  bool truncated = false;
  CHECK((*tokenizer)->Encode("ab ab ab", {.max_length = 2}, &truncated) ==
        std::vector<int32_t>{5, 1});
  CHECK(truncated);
}

TEST_CASE("UnigramTokenizer falls back to bytes for unknown characters with byte_fallback") {
  std::string bytes;
  for (const char* name : {"<0x78>", "<0x79>"}) bytes += std::string(R"(, [")") + name + R"(", 0])";
  auto tokenizer = UnigramTokenizer::FromTokenizerJson(WriteTemp(
      "bytes.json",
      TinyJson(R"(, "byte_fallback": true)")
          .replace(TinyJson("").find(R"(["a", -4]])"), 10, R"(["a", -4])" + bytes + "]")));
  REQUIRE(tokenizer.ok());
  // "▁" "xy" is unknown: its bytes x and y exist as <0x78> <0x79>; "z" has none: unk.
  CHECK((*tokenizer)->Encode("xy", kPlain) == std::vector<int32_t>{2, 7, 8});
  CHECK((*tokenizer)->Encode("xz", kPlain) == std::vector<int32_t>{2, 0});
}

TEST_CASE("UnigramTokenizer names what it refuses") {
  const auto refused = [](const std::string& json, const std::string& expected_words) {
    const std::string path = WriteTemp("refused.json", json);
    auto tokenizer = UnigramTokenizer::FromTokenizerJson(path);
    REQUIRE_FALSE(tokenizer.ok());
    CHECK(tokenizer.status().code() == absl::StatusCode::kInvalidArgument);
    INFO(tokenizer.status().message());
    CHECK(std::string(tokenizer.status().message()).find(expected_words) != std::string::npos);
    CHECK(std::string(tokenizer.status().message()).find(path) != std::string::npos);
  };
  SECTION("a piece that is not [piece, score]") {
    refused(R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["a", "x"]]}})",
            "model.vocab[0]");
  }
  SECTION("no unk id") {
    refused(R"({"model": {"type": "Unigram", "vocab": [["a", 0]]}})", "model.unk_id");
  }
  SECTION("another normalizer") {
    refused(TinyJson("", R"(, "normalizer": {"type": "Lowercase"})"), "normalizer `Lowercase`");
  }
  SECTION("a regex it cannot read") {
    refused(TinyJson("", R"(, "normalizer": {"type": "Replace", "pattern": {"Regex": "a|b"},)"
                         R"( "content": ""})"),
            "Replace regex");
  }
  SECTION("a broken charsmap") {
    refused(
        TinyJson("", R"(, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"})"),
        "precompiled_charsmap");
  }
  SECTION("another pre-tokenizer") {
    refused(TinyJson("").replace(TinyJson("").find(R"("type": "Metaspace")"), 19,
                                 R"("type": "ByteLevel")"),
            "pre_tokenizer `ByteLevel`");
  }
}

TEST_CASE("UnigramTokenizer gives the ids of tokenizers (trained, NFKC, XLM-R layout)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("bpe_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = UnigramTokenizer::FromTokenizerJson(
      TextDataPath("unigram/tokenizer.json"), TextDataPath("unigram/tokenizer_config.json"));
  INFO(tokenizer.status());
  REQUIRE(tokenizer.ok());
  CHECK((*tokenizer)->model_max_length() == 512);
  CHECK((*tokenizer)->pad_id() == 1);
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("unigram"));
}

TEST_CASE("UnigramTokenizer gives the ids of tokenizers (t5-small tokenizer.json, Precompiled)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("bpe_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = UnigramTokenizer::FromTokenizerJson(TextDataPath("t5-small/tokenizer.json"));
  REQUIRE(tokenizer.ok());
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("t5_small"));
}

TEST_CASE("UnigramTokenizer from t5-small's tokenizer.json equals spiece.model on plain text") {
  auto json = UnigramTokenizer::FromTokenizerJson(TextDataPath("t5-small/tokenizer.json"));
  auto spiece = SentencePieceTokenizer::FromFile(TextDataPath("t5-small/spiece.model"));
  REQUIRE(json.ok());
  REQUIRE(spiece.ok());
  const auto corpus = LoadFixture("corpus.json");
  REQUIRE(corpus.has_value());
  // The benchmark documents: words, punctuation and single spaces, where the two agree.
  for (const auto& text : corpus->at("bench").get<std::vector<std::string>>()) {
    INFO(text);
    CHECK((*json)->Encode(text, {.max_length = 0}) == (*spiece)->Encode(text, {.max_length = 0}));
  }
}

}  // namespace
}  // namespace modelpool
