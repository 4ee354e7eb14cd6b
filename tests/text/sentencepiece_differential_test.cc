// Our SentencePiece tokenizer against the `sentencepiece` library, in one process: the fixture
// corpus and seeded random strings, for the trained model and t5-small.
//
// The library here is Debian's 0.1.97, whose Viterbi arithmetic differs from sentencepiece 0.2's
// that we follow (Note [Viterbi arithmetic: sentencepiece 0.2 versus 0.1.97] in
// lib/text/sentencepiece_tokenizer.cc): where the ids differ, the span where they do must hold
// normal pieces only on both sides, and ours must score at least as high as the library's.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lib/text/sentencepiece_model_internal.h"
#include "lib/text/tokenizer_files_internal.h"
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

// "" when `actual` may stand for `expected`: the same ids, or where they differ, spans of the
// text that ours splits into pieces scoring at least as high under `model` (0.1.97 breaks ties,
// and loses decisions in long texts, by its own arithmetic); else why not. The two are walked
// side by side by the bytes of the normalized text their pieces cover; a run of unknown
// characters is the same on both sides.
std::string Diff(const text_internal::SentencePieceModel& model,
                 const std::vector<int32_t>& expected, const std::vector<int32_t>& actual) {
  using Model = text_internal::SentencePieceModel;
  if (expected == actual) return "";
  float max_score = 0;
  for (const Model::Piece& piece : model.pieces) {
    if (piece.type == Model::kNormal) max_score = std::max(max_score, piece.score);
  }
  // The piece's bytes and score, or false for an id without a known length.
  const auto piece = [&](int32_t id, size_t* bytes, double* score) {
    if (id < 0 || id >= static_cast<int32_t>(model.pieces.size())) return false;
    const Model::Piece& p = model.pieces[id];
    *bytes = p.piece.size();
    if (p.type == Model::kNormal) {
      *score = p.score;
    } else if (p.type == Model::kUserDefined) {
      *score = static_cast<double>(p.piece.size() * max_score) - 0.1;
    } else {
      return false;
    }
    return true;
  };
  const std::string ids_diff = IdsDiff(expected, actual);
  size_t i = 0, j = 0;
  while (i < expected.size() || j < actual.size()) {
    if (i < expected.size() && j < actual.size() && expected[i] == actual[j]) {
      ++i, ++j;  // both at the same byte, the same piece (an unk run included)
      continue;
    }
    // A span where they differ: take pieces from the side that is behind until both meet.
    size_t expected_end = 0, actual_end = 0;
    double expected_score = 0, actual_score = 0;
    do {
      size_t bytes = 0;
      double score = 0;
      if (expected_end <= actual_end && i < expected.size()) {
        if (!piece(expected[i++], &bytes, &score)) return ids_diff + "\n  (an unk piece differs)";
        expected_end += bytes, expected_score += score;
      } else if (j < actual.size()) {
        if (!piece(actual[j++], &bytes, &score)) return ids_diff + "\n  (an unk piece differs)";
        actual_end += bytes, actual_score += score;
      } else {
        return ids_diff + "\n  (they cover different text)";
      }
    } while (expected_end != actual_end);
    // Sums in double of float scores: a tie sums alike up to the order of the terms.
    if (actual_score + 1e-5 * std::max(1.0, std::abs(expected_score)) < expected_score) {
      return ids_diff + "\n  (a span where ours scores " + std::to_string(actual_score) +
             " and the library's " + std::to_string(expected_score) + ")";
    }
  }
  return "";
}

void Compare(const std::string& model, const std::vector<std::string>& texts) {
  std::string error;
  auto library = testing::SentencePieceLibrary::Load(TextDataPath(model), &error);
  INFO(model << " " << error);
  REQUIRE(library != nullptr);
  auto ours = SentencePieceTokenizer::FromFile(TextDataPath(model));
  REQUIRE(ours.ok());
  const auto bytes = text_internal::ReadFileToString(TextDataPath(model));
  REQUIRE(bytes.ok());
  const auto parsed = text_internal::ParseSentencePieceModel(*bytes);
  REQUIRE(parsed.ok());
  const EncodeOptions plain{.max_length = 0, .truncation = false, .add_special_tokens = false};
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    // The library replaces each invalid byte on its own; Python, and we, each maximal subpart.
    std::string storage;
    const std::string valid(text_internal::ValidUtf8(texts[i], &storage));
    const std::vector<int> reference = library->Encode(valid);
    const std::vector<int32_t> expected(reference.begin(), reference.end());
    const std::vector<int32_t> actual = (*ours)->Encode(texts[i], plain);
    std::string diff = Diff(*parsed, expected, actual);
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
