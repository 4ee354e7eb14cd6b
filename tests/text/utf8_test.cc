#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lib/text/utf8_internal.h"
#include "modelpool/text/sentencepiece_tokenizer.h"
#include "modelpool/text/wordpiece_tokenizer.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

std::string Valid(const std::string& bytes) {
  std::string storage;
  return std::string(text_internal::ValidUtf8(bytes, &storage));
}

const std::string kFffd = "\xEF\xBF\xBD";

TEST_CASE("ValidUtf8 keeps valid text as it is") {
  for (const std::string& text : std::vector<std::string>{
           "", "plain ascii", "caf\xC3\xA9", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "\xEF\xBF\xBD",
           "\xF4\x8F\xBF\xBF", std::string("a\0b", 3)}) {
    std::string storage;
    const std::string_view valid = text_internal::ValidUtf8(text, &storage);
    CHECK(valid == text);
    CHECK(valid.data() == text.data());
  }
}

TEST_CASE("ValidUtf8 replaces each maximal subpart with one U+FFFD, as CPython does") {
  CHECK(Valid("\xE1\x80"
              "A") == kFffd + "A");                                   // truncated sequence: one
  CHECK(Valid("\xE0\x80\xAF") == kFffd + kFffd + kFffd);              // overlong: byte by byte
  CHECK(Valid("\xED\xA0\x80") == kFffd + kFffd + kFffd);              // surrogate
  CHECK(Valid("\xF0\x90\x80") == kFffd);                              // truncated 4-byte sequence
  CHECK(Valid("\xF4\x90\x80\x80") == kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  CHECK(Valid("\xC0\xAF") == kFffd + kFffd);
  CHECK(Valid("a\xFF"
              "b") == "a" + kFffd + "b");
}

TEST_CASE("ValidUtf8 agrees with Python on the fixture samples") {
  const auto corpus = testing::LoadFixture("corpus.json");
  REQUIRE(corpus.has_value());
  auto wordpiece = WordPieceTokenizer::FromVocabTxt(testing::TextDataPath("bench_vocab.txt"));
  auto sentencepiece =
      SentencePieceTokenizer::FromFile(testing::TextDataPath("t5-small/spiece.model"));
  REQUIRE(wordpiece.ok());
  REQUIRE(sentencepiece.ok());
  for (const auto& sample : corpus->at("invalid_utf8")) {
    const std::string hex = sample.at("hex");
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    const std::string decoded = sample.at("decoded");
    INFO("bytes " << hex);
    CHECK(Valid(bytes) == decoded);
    // So the tokenizers give the ids of the decoded string.
    CHECK((*wordpiece)->Encode(bytes, {}) == (*wordpiece)->Encode(decoded, {}));
    CHECK((*sentencepiece)->Encode(bytes, {}) == (*sentencepiece)->Encode(decoded, {}));
  }
}

}  // namespace
}  // namespace modelpool
