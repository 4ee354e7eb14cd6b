#ifndef MODELPOOL_TESTS_TEXT_REFERENCE_FIXTURES_H_
#define MODELPOOL_TESTS_TEXT_REFERENCE_FIXTURES_H_

// Reading the reference fixtures of tools/make_tokenizer_fixtures.py, and reporting mismatches.

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace modelpool::testing {

inline std::string TextDataPath(const std::string& name) {
  return std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/text/" + name;
}

// The parsed fixture, or nullopt when it is not there.
inline std::optional<nlohmann::json> LoadFixture(const std::string& name) {
  std::ifstream in(TextDataPath(name));
  if (!in) return std::nullopt;
  return nlohmann::json::parse(in);
}

// The 1 MiB text of the fixtures: snippets picked by a 64-bit LCG, each followed by a space.
inline std::string MibText(const nlohmann::json& corpus) {
  const nlohmann::json& mib = corpus.at("mib");
  const auto snippets = mib.at("snippets").get<std::vector<std::string>>();
  uint64_t state = mib.at("seed").get<uint64_t>();
  const auto bytes = mib.at("bytes").get<size_t>();
  std::string text;
  while (text.size() < bytes) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    text += snippets[(state >> 33) % snippets.size()];
    text += ' ';
  }
  return text;
}

// FNV-1a over the ids as little-endian 32-bit integers, in hex.
inline std::string Fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (const int32_t id : ids) {
    const auto v = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) {
      h ^= (v >> (8 * k)) & 0xFF;
      h *= 0x100000001B3ULL;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

inline std::string Join(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
  return out.str();
}

// "" when equal, else where the ids first differ and both sequences from there.
inline std::string IdsDiff(const std::vector<int32_t>& expected,
                           const std::vector<int32_t>& actual) {
  if (expected == actual) return "";
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  const auto tail = [i](const std::vector<int32_t>& ids) {
    const size_t end = std::min(ids.size(), i + 12);
    return Join(std::vector<int32_t>(ids.begin() + std::min(i, ids.size()), ids.begin() + end));
  };
  std::ostringstream out;
  out << "first difference at id " << i << " (expected " << expected.size() << " ids, got "
      << actual.size() << ")\n  expected ..." << tail(expected) << "\n  actual   ..."
      << tail(actual);
  return out.str();
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_TEXT_REFERENCE_FIXTURES_H_
