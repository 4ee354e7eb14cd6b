// Our SentencePiece tokenizer against the `sentencepiece` library, in one process: the fixture
// corpus and seeded random strings, for the trained model and t5-small.

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lib/text/utf8_internal.h"
#include "modelpool/text/sentencepiece_tokenizer.h"
#include "tests/text/reference_fixtures.h"
#include "tests/text/sentencepiece_library.h"

namespace modelpool {
namespace {

using testing::IdsDiff;
using testing::TextDataPath;

// Random text: runs of characters from mixed scripts, whitespace runs, controls, marks,
// emoji, and (when `invalid`) stray bytes that are not UTF-8.
std::string RandomText(std::mt19937_64& rng, bool invalid) {
  static const std::vector<std::pair<char32_t, char32_t>> kRanges = {
      {0x20, 0x7E},       {0x20, 0x7E},       {0x20, 0x7E},       {0x00, 0x1F},
      {0xA0, 0x17F},      {0x300, 0x36F},     {0x370, 0x3FF},     {0x400, 0x4FF},
      {0x590, 0x5FF},     {0x600, 0x6FF},     {0x900, 0x97F},     {0xE00, 0xE7F},
      {0x2000, 0x206F},   {0x3000, 0x30FF},   {0x4E00, 0x4EFF},   {0xAC00, 0xACFF},
      {0xFF00, 0xFFEF},   {0x1F300, 0x1F6FF}, {0x1F3FB, 0x1F3FF}, {0xFE00, 0xFE0F},
      {0x10000, 0x1FFFF}, {0xE000, 0xE0FF},
  };
  std::string text;
  const int length = std::uniform_int_distribution<int>(0, 60)(rng);
  for (int i = 0; i < length; ++i) {
    const auto& [lo, hi] = kRanges[rng() % kRanges.size()];
    char32_t c = lo + static_cast<char32_t>(rng() % (hi - lo + 1));
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    if (rng() % 8 == 0) {
      text.append(rng() % 4 + 1, rng() % 2 ? ' ' : '\t');  // whitespace runs
    }
    if (invalid && rng() % 16 == 0) text.push_back(static_cast<char>(0x80 + rng() % 0x80));
    text_internal::AppendUtf8(c, &text);
  }
  return text;
}

void Compare(const std::string& model, const std::vector<std::string>& texts) {
  std::string error;
  auto library = testing::SentencePieceLibrary::Load(TextDataPath(model), &error);
  INFO(model << " " << error);
  REQUIRE(library != nullptr);
  auto ours = SentencePieceTokenizer::FromFile(TextDataPath(model));
  REQUIRE(ours.ok());
  const EncodeOptions plain{.max_length = 0, .truncation = false, .add_special_tokens = false};
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    // The library replaces each invalid byte on its own; Python, and we, each maximal subpart.
    std::string storage;
    const std::string valid(text_internal::ValidUtf8(texts[i], &storage));
    const std::vector<int> reference = library->Encode(valid);
    const std::vector<int32_t> expected(reference.begin(), reference.end());
    const std::vector<int32_t> actual = (*ours)->Encode(texts[i], plain);
    std::string diff = IdsDiff(expected, actual);
    std::vector<int> visible;
    for (const int id : reference) {
      if (!library->IsControl(id) && !library->IsUnknown(id)) visible.push_back(id);
    }
    if (diff.empty() && (*ours)->Decode(actual, false) != library->Decode(reference)) {
      diff = "decode differs: " + (*ours)->Decode(actual, false);
    }
    if (diff.empty() && (*ours)->Decode(actual, true) != library->Decode(visible)) {
      diff = "decode without special ids differs: " + (*ours)->Decode(actual, true);
    }
    if (!diff.empty() && ++failures <= 5) {
      FAIL_CHECK(model << " text " << i << ": " << nlohmann::json(valid) << "\n" << diff);
    }
  }
  INFO(failures << " of " << texts.size() << " differ");
  CHECK(failures == 0);
}

std::vector<std::string> Texts() {
  std::vector<std::string> texts;
  const auto corpus = testing::LoadFixture("corpus.json");
  REQUIRE(corpus.has_value());
  for (const char* group : {"hard", "random", "bench"}) {
    for (const auto& text : corpus->at(group)) texts.push_back(text.get<std::string>());
  }
  std::mt19937_64 rng(20261123);
  for (int i = 0; i < 3000; ++i) texts.push_back(RandomText(rng, /*invalid=*/i % 3 == 0));
  texts.push_back(testing::MibText(*corpus));
  return texts;
}

TEST_CASE("SentencePieceTokenizer matches libsentencepiece on the trained model") {
  Compare("spm_trained.model", Texts());
}

TEST_CASE("SentencePieceTokenizer matches libsentencepiece on t5-small") {
  Compare("t5-small/spiece.model", Texts());
}

}  // namespace
}  // namespace modelpool
