#include "modelpool/text/bpe_tokenizer.h"

#include <catch2/catch.hpp>
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
  static const auto dir = testing::TempDir("bpe_test");
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

const EncodeOptions kPlain{.max_length = 0, .truncation = false, .add_special_tokens = false};
const EncodeOptions kSpecial{.max_length = 0, .truncation = false, .add_special_tokens = true};

std::unique_ptr<BpeTokenizer> Trained() {
  auto tokenizer = BpeTokenizer::FromTokenizerJson(TextDataPath("bpe/tokenizer.json"),
                                                   TextDataPath("bpe/tokenizer_config.json"));
  REQUIRE(tokenizer.ok());
  return std::move(*tokenizer);
}

// Byte-level characters: "a"=a, "b"=b, space=Ġ (U+0120). Merges: "a b" then "Ġ ab".
std::string TinyJson(const std::string& merges, const std::string& extra = "") {
  return R"({"model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "\u0120": 4,)"
         R"( "ab": 5, "\u0120ab": 6, "<mask>": 7}, "merges": )" +
         merges +
         R"(}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},)"
         R"( "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 1], "cls": ["<s>", 0]},)"
         R"( "decoder": {"type": "ByteLevel"}, "added_tokens": [)"
         R"({"id": 0, "content": "<s>", "special": true, "normalized": false},)"
         R"({"id": 1, "content": "</s>", "special": true, "normalized": false},)"
         R"({"id": 7, "content": "<mask>", "special": true, "normalized": false, "lstrip": true}])" +
         extra + "}";
}

TEST_CASE("BpeTokenizer merges byte pairs by rank and frames the text with <s> </s>") {
  auto tokenizer =
      BpeTokenizer::FromTokenizerJson(WriteTemp("tiny.json", TinyJson(R"(["a b", "\u0120 ab"])")));
  REQUIRE(tokenizer.ok());
  CHECK((*tokenizer)->Encode("ab ab", kSpecial) == std::vector<int32_t>{0, 5, 6, 1});
  CHECK((*tokenizer)->Encode("ba", kPlain) == std::vector<int32_t>{3, 2});
  // Merges as pairs, the newer form of the file, give the same ids.
  auto pairs = BpeTokenizer::FromTokenizerJson(
      WriteTemp("pairs.json", TinyJson(R"([["a", "b"], ["\u0120", "ab"]])")));
  REQUIRE(pairs.ok());
  CHECK((*pairs)->Encode("ab ab", kSpecial) == std::vector<int32_t>{0, 5, 6, 1});
}

TEST_CASE("BpeTokenizer finds added tokens in the raw text, <mask> taking the spaces before it") {
  auto tokenizer =
      BpeTokenizer::FromTokenizerJson(WriteTemp("tiny.json", TinyJson(R"(["a b", "\u0120 ab"])")));
  REQUIRE(tokenizer.ok());
  CHECK((*tokenizer)->Encode("ab  <mask></s>", kPlain) == std::vector<int32_t>{5, 7, 1});
  CHECK((*tokenizer)->Encode("<s>ab", kPlain) == std::vector<int32_t>{0, 5});
  // Not a token, and bytes the vocabulary lacks are dropped, as the reference does without an
  // unk token.
  CHECK((*tokenizer)->Encode("<s", kPlain).empty());
}

TEST_CASE("BpeTokenizer truncation keeps <s> and </s>") {
  auto tokenizer = Trained();
  const std::string text = "the quick brown fox jumps over the lazy dog again and again";
  bool truncated = false;
  const std::vector<int32_t> ids = tokenizer->Encode(text, {.max_length = 6}, &truncated);
  CHECK(truncated);
  REQUIRE(ids.size() == 6);
  CHECK(ids.front() == 0);
  CHECK(ids.back() == 2);
  const std::vector<int32_t> whole = tokenizer->Encode(text, kSpecial);
  CHECK(std::vector<int32_t>(ids.begin(), ids.end() - 1) ==
        std::vector<int32_t>(whole.begin(), whole.begin() + 5));
  CHECK(tokenizer->Encode(text, {.max_length = 1}).size() == 2);  // only the special tokens
}

TEST_CASE("BpeTokenizer decodes bytes back to the text") {
  auto tokenizer = Trained();
  for (const std::string text : {"Hello, world! 你好 👍🏽 e\u0301", "  two  spaces\n", ""}) {
    CHECK(tokenizer->Decode(tokenizer->Encode(text, kSpecial)) == text);
    CHECK(tokenizer->Decode(tokenizer->Encode(text, kSpecial), false) == "<s>" + text + "</s>");
  }
  // A lone byte of a character is not UTF-8: U+FFFD.
  const std::vector<int32_t> ids = tokenizer->Encode("\U0010FFFD", kPlain);
  REQUIRE(ids.size() >= 2);
  CHECK(tokenizer->Decode({ids[0]}) == "\xEF\xBF\xBD");
  CHECK(tokenizer->Decode({-1, 1 << 30}) == "");
}

TEST_CASE("BpeTokenizer reads vocab.json and merges.txt as RobertaTokenizer builds them") {
  auto json = Trained();
  auto files = BpeTokenizer::FromVocabAndMerges(
      TextDataPath("bpe/vocab.json"), TextDataPath("bpe/merges.txt"),
      TextDataPath("bpe/tokenizer_config.json"), TextDataPath("bpe/special_tokens_map.json"));
  REQUIRE(files.ok());
  const auto corpus = LoadFixture("corpus.json");
  REQUIRE(corpus.has_value());
  for (const char* group : {"hard", "random", "bench"}) {
    for (const auto& text : corpus->at(group).get<std::vector<std::string>>()) {
      INFO(group << ": " << nlohmann::json(text));
      CHECK((*files)->Encode(text, kSpecial) == json->Encode(text, kSpecial));
    }
  }
  CHECK((*files)->vocab_size() == json->vocab_size());
  CHECK((*files)->pad_id() == 1);
  CHECK((*files)->model_max_length() == 512);
  CHECK((*files)->TokenToId("<mask>") == json->TokenToId("<mask>"));
  // Without the config the same defaults apply.
  auto bare = BpeTokenizer::FromVocabAndMerges(TextDataPath("bpe/vocab.json"),
                                               TextDataPath("bpe/merges.txt"));
  REQUIRE(bare.ok());
  CHECK((*bare)->Encode("Hello <mask> world</s>", kSpecial) ==
        json->Encode("Hello <mask> world</s>", kSpecial));
}

TEST_CASE("BpeTokenizer names what it refuses") {
  SECTION("missing file") {
    CHECK(BpeTokenizer::FromTokenizerJson("/nonexistent/tokenizer.json").status().code() ==
          absl::StatusCode::kNotFound);
  }
  const auto refused = [](const std::string& json, const std::string& expected_words) {
    const std::string path = WriteTemp("refused.json", json);
    auto tokenizer = BpeTokenizer::FromTokenizerJson(path);
    REQUIRE_FALSE(tokenizer.ok());
    CHECK(tokenizer.status().code() == absl::StatusCode::kInvalidArgument);
    INFO(tokenizer.status().message());
    CHECK(std::string(tokenizer.status().message()).find(expected_words) != std::string::npos);
    CHECK(std::string(tokenizer.status().message()).find(path) != std::string::npos);
  };
  SECTION("not JSON") { refused("[1", "not a JSON object"); }
  SECTION("no merges") { refused(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})", "merges"); }
  SECTION("a merge of unknown tokens") { refused(TinyJson(R"(["a c"])"), "names c"); }
  SECTION("a merge whose result is unknown") { refused(TinyJson(R"(["b a"])"), "makes ba"); }
  SECTION("a merge that is not a pair") { refused(TinyJson(R"(["a b c"])"), "model.merges[0]"); }
  SECTION("vocab of the wrong type") {
    refused(R"({"model": {"type": "BPE", "vocab": ["a"], "merges": []}})", "model.vocab");
  }
  SECTION("an id of the wrong type") {
    refused(R"({"model": {"type": "BPE", "vocab": {"a": "0"}, "merges": []}})", "token a");
  }
  SECTION("dropout") {
    refused(R"({"model": {"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}})",
            "dropout");
  }
  SECTION("another pre-tokenizer") {
    refused(TinyJson("[]", R"(, "pre_tokenizer": {"type": "Whitespace"})"), "pre_tokenizer");
  }
  SECTION("added tokens of the wrong type") {
    refused(TinyJson("[]", R"(, "added_tokens": {"a": 1})"), "added_tokens");
  }
  SECTION("merges.txt with a bad line") {
    const std::string vocab = WriteTemp("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
    const std::string merges = WriteTemp("merges.txt", "#version: 0.2\na b\nab\n");
    auto tokenizer = BpeTokenizer::FromVocabAndMerges(vocab, merges);
    REQUIRE_FALSE(tokenizer.ok());
    CHECK(std::string(tokenizer.status().message()).find(merges + ": line 3") != std::string::npos);
  }
}

TEST_CASE("BpeTokenizer gives the ids of tokenizers (trained byte-level BPE, RoBERTa layout)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("bpe_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  INFO("reference: " << expected->at("reference"));
  testing::CheckAgainstReference(*Trained(), *corpus, expected->at("bpe"));
}

TEST_CASE("BpeTokenizer gives the ids of tokenizers (add_prefix_space, rstrip, single_word)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("bpe_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = BpeTokenizer::FromTokenizerJson(TextDataPath("bpe_prefix/tokenizer.json"));
  REQUIRE(tokenizer.ok());
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("bpe_prefix"));
}

}  // namespace
}  // namespace modelpool
