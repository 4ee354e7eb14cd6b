#include "modelpool/text/sentencepiece_tokenizer.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "tests/text/reference_check.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

using testing::LoadFixture;
using testing::TextDataPath;

// Protobuf wire format, enough to write small models.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Field(int number, const std::string& bytes) {
  return Varint(number << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string VarintField(int number, uint64_t value) { return Varint(number << 3) + Varint(value); }
std::string Piece(const std::string& piece, float score, int type) {
  std::string score_bytes(4, '\0');
  std::memcpy(score_bytes.data(), &score, 4);
  return Field(1, Field(1, piece) + Varint(2 << 3 | 5) + score_bytes + VarintField(3, type));
}
// <unk> <s> </s> ▁a ▁b a b, identity normalization.
std::string SmallModel(const std::string& trainer_spec = "") {
  return Piece("<unk>", 0, 2) + Piece("<s>", 0, 3) + Piece("</s>", 0, 3) +
         Piece(
             "\xE2\x96\x81"
             "a",
             -1, 1) +
         Piece(
             "\xE2\x96\x81"
             "b",
             -2, 1) +
         Piece("a", -3, 1) + Piece("b", -3, 1) + Field(2, trainer_spec) +
         Field(3, Field(1, "identity"));
}

TEST_CASE("SentencePieceTokenizer encodes a hand-made model") {
  auto tokenizer = SentencePieceTokenizer::FromBytes(SmallModel(), "small");
  REQUIRE(tokenizer.ok());
  const EncodeOptions plain{.max_length = 0, .add_special_tokens = false};
  CHECK((*tokenizer)->Encode("a b  ab", plain) == std::vector<int32_t>{3, 4, 3, 6});
  // Unknown characters: one unk for the run.
  CHECK((*tokenizer)->Encode("a xyz", plain) == std::vector<int32_t>{3, 0});
  CHECK((*tokenizer)->Encode("a", {}) == std::vector<int32_t>{3, 2});
  CHECK((*tokenizer)->Encode("", {}) == std::vector<int32_t>{2});
  CHECK((*tokenizer)->Decode({3, 4, 0, 2}, false) == "a b \xE2\x81\x87 ");
  CHECK((*tokenizer)->Decode({3, 4, 0, 2}, true) == "a b");
}

TEST_CASE("SentencePieceTokenizer truncation keeps </s>") {
  auto tokenizer = SentencePieceTokenizer::FromBytes(SmallModel(), "small");
  REQUIRE(tokenizer.ok());
  bool truncated = false;
  CHECK((*tokenizer)->Encode("a a a a", {.max_length = 3}, &truncated) ==
        std::vector<int32_t>{3, 3, 2});
  CHECK(truncated);
}

TEST_CASE("SentencePieceTokenizer refuses models it does not implement") {
  const auto refused = [](const std::string& bytes, const std::string& words) {
    auto tokenizer = SentencePieceTokenizer::FromBytes(bytes, "model.bin");
    REQUIRE_FALSE(tokenizer.ok());
    CHECK(tokenizer.status().code() == absl::StatusCode::kInvalidArgument);
    INFO(tokenizer.status().message());
    CHECK(std::string(tokenizer.status().message()).find(words) != std::string::npos);
    CHECK(std::string(tokenizer.status().message()).find("model.bin") != std::string::npos);
  };
  refused(SmallModel(VarintField(3, 2)), "BPE");
  refused(SmallModel(VarintField(35, 1)), "byte_fallback");
  refused(SmallModel(VarintField(24, 1)), "treat_whitespace_as_suffix");
  refused(Piece("a", 0, 1), "no unk piece");
  refused(SmallModel() + Piece("a", 0, 1), "defined twice");
  refused(SmallModel().substr(0, 20), "not a SentencePiece model");
  refused("\x0a\xff\xff\xff\xff\x0f", "not a SentencePiece model");
}

TEST_CASE("SentencePieceTokenizer names T5's extra ids as Hugging Face does") {
  auto tokenizer = SentencePieceTokenizer::FromFile(TextDataPath("t5-small/spiece.model"),
                                                    TextDataPath("t5-small/tokenizer_config.json"));
  REQUIRE(tokenizer.ok());
  CHECK((*tokenizer)->vocab_size() == 32100);
  CHECK((*tokenizer)->model_max_length() == 512);
  CHECK((*tokenizer)->pad_id() == 0);
  CHECK((*tokenizer)->eos_id() == 1);
  CHECK((*tokenizer)->IdToPiece(32099) == "<extra_id_0>");
  CHECK((*tokenizer)->IdToPiece(32000) == "<extra_id_99>");
  const std::vector<int32_t> ids = {32099, 8774, 32098, 1};
  // The sentinel is text, so the next piece keeps its leading space.
  CHECK((*tokenizer)->Decode(ids, false) == "<extra_id_0> Hello<extra_id_1>");
  CHECK((*tokenizer)->Decode(ids, true) == "Hello");
  CHECK((*tokenizer)->Decode({8774, 40000, -3}, true) == "Hello");
}

TEST_CASE("SentencePieceTokenizer gives the ids of sentencepiece (trained unigram model)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("sentencepiece_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = SentencePieceTokenizer::FromFile(TextDataPath("spm_trained.model"));
  REQUIRE(tokenizer.ok());
  INFO("reference: " << expected->at("reference"));
  CHECK((*tokenizer)->vocab_size() == expected->at("trained").at("pieces").get<int>());
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("trained"));
}

TEST_CASE("SentencePieceTokenizer gives the ids of sentencepiece (t5-small)") {
  const auto corpus = LoadFixture("corpus.json");
  const auto expected = LoadFixture("sentencepiece_expected.json");
  REQUIRE(corpus.has_value());
  REQUIRE(expected.has_value());
  auto tokenizer = SentencePieceTokenizer::FromFile(TextDataPath("t5-small/spiece.model"));
  REQUIRE(tokenizer.ok());
  INFO("reference: " << expected->at("reference"));
  testing::CheckAgainstReference(**tokenizer, *corpus, expected->at("t5_small"));
}

}  // namespace
}  // namespace modelpool
