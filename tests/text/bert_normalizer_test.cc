#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lib/text/bert_normalizer_internal.h"
#include "lib/text/utf8_internal.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

using text_internal::BertNormalize;
using text_internal::BertNormalizerOptions;

std::vector<char32_t> Normalized(char32_t c, const BertNormalizerOptions& options) {
  std::string in, out;
  text_internal::AppendUtf8(c, &in);
  BertNormalize(in, options, &out);
  std::vector<char32_t> result;
  for (size_t i = 0; i < out.size();) {
    char32_t d;
    i += text_internal::DecodeUtf8(out.data() + i, &d);
    result.push_back(d);
  }
  return result;
}

bool InRanges(const nlohmann::json& ranges, char32_t c) {
  for (const auto& r : ranges) {
    if (c >= r[0].get<char32_t>() && c <= r[1].get<char32_t>()) return true;
  }
  return false;
}

std::string Hex(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%x", static_cast<unsigned>(c));
  return buf;
}

// bert_unicode_probe.json has what the reference does to each code point alone.
TEST_CASE("The BERT normalizer and pre-tokenizer treat every code point as tokenizers does") {
  const auto probe = testing::LoadFixture("bert_unicode_probe.json");
  REQUIRE(probe.has_value());
  INFO("reference: " << probe->at("reference"));
  const BertNormalizerOptions lower{false, false, false, true};
  const BertNormalizerOptions strip{false, false, true, false};
  const BertNormalizerOptions clean{true, true, false, false};
  const nlohmann::json& clean_text = probe->at("clean_text");
  int failures = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const std::vector<char32_t> self = {c};
    const auto expect = [&](const nlohmann::json& map, bool skip) -> std::vector<char32_t> {
      const auto it = map.find(Hex(c));
      if (it == map.end()) return skip ? std::vector<char32_t>{} : self;
      return it->get<std::vector<char32_t>>();
    };
    std::vector<char32_t> expected_clean = self;
    if (InRanges(clean_text.at("removed"), c)) expected_clean = {};
    if (InRanges(clean_text.at("space"), c)) expected_clean = {' '};
    if (InRanges(clean_text.at("padded"), c)) expected_clean = {' ', c, ' '};
    const uint8_t classes = text_internal::BertCharClassOf(c);
    const bool hangul = c >= 0xAC00 && c <= 0xD7A3;
    const bool ok =
        Normalized(c, lower) == expect(probe->at("lowercase"), false) &&
        (hangul || Normalized(c, strip) == expect(probe->at("strip_accents"), false)) &&
        Normalized(c, clean) == expected_clean &&
        ((classes & text_internal::kBertPunctuation) != 0) ==
            InRanges(probe->at("punctuation"), c) &&
        ((classes & text_internal::kBertWhitespace) != 0) == InRanges(probe->at("whitespace"), c);
    if (!ok && ++failures <= 10) FAIL_CHECK("code point U+" << Hex(c));
  }
  CHECK(failures == 0);
}

TEST_CASE("BertNormalize puts combining marks in canonical order before removing them") {
  std::string out;
  // a, U+0301 (class 230), U+0316 (class 220), then lowercase keeps U+0307 from İ.
  BertNormalize("A\xCC\x81\xCC\x96 \xC4\xB0", {true, true, false, true}, &out);
  CHECK(out == "a\xCC\x81\xCC\x96 i\xCC\x87");
  out.clear();
  BertNormalize("\xC3\x89t\xC3\xA9 \xE4\xBD\xA0", {}, &out);
  CHECK(out == "ete  \xE4\xBD\xA0 ");
}

}  // namespace
}  // namespace modelpool
