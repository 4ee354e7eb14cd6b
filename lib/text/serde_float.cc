#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/text/serde_float_internal.h"

namespace modelpool::text_internal {

double SerdeParseDouble(std::string_view number) {
  size_t i = 0;
  const bool negative = i < number.size() && number[i] == '-';
  if (negative) ++i;
  uint64_t significand = 0;
  int64_t exponent = 0;
  bool overflow = false;
  const auto digit = [&](char c, bool fraction) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (!overflow && significand <= (UINT64_MAX - d) / 10) {
      significand = significand * 10 + d;
      if (fraction) --exponent;
    } else {
      overflow = true;  // later digits are dropped, as serde_json drops them
      if (!fraction) ++exponent;
    }
  };
  for (; i < number.size() && number[i] >= '0' && number[i] <= '9'; ++i) digit(number[i], false);
  if (i < number.size() && number[i] == '.') {
    for (++i; i < number.size() && number[i] >= '0' && number[i] <= '9'; ++i) {
      digit(number[i], true);
    }
  }
  if (i < number.size() && (number[i] == 'e' || number[i] == 'E')) {
    ++i;
    bool negative_exponent = false;
    if (i < number.size() && (number[i] == '+' || number[i] == '-')) {
      negative_exponent = number[i++] == '-';
    }
    int64_t e = 0;
    for (; i < number.size() && number[i] >= '0' && number[i] <= '9'; ++i) {
      e = std::min<int64_t>(e * 10 + (number[i] - '0'), 100000);
    }
    exponent += negative_exponent ? -e : e;
  }
  double f = static_cast<double>(significand);
  while (true) {
    const int64_t magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude <= 308) {
      const double pow = std::pow(10.0, static_cast<double>(magnitude));  // exact to 1e22, then
      f = exponent >= 0 ? f * pow : f / pow;                              // as serde's table
      break;
    }
    if (f == 0.0 || exponent >= 0) break;
    f /= 1e308;
    exponent += 308;
  }
  return negative ? -f : f;
}

namespace {

// Collects the numbers of `model.vocab`: the second element of each pair.
class ScoreCollector : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<double> scores;

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t value) override {
    if (InVocabPair()) scores.push_back(static_cast<double>(value));
    return Value();
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (InVocabPair()) scores.push_back(static_cast<double>(value));
    return Value();
  }
  bool number_float(number_float_t, const string_t& text) override {
    if (InVocabPair()) scores.push_back(SerdeParseDouble(text));
    return Value();
  }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    path_.emplace_back("{}");
    return true;
  }
  bool key(string_t& key) override {
    path_.back() = key;
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override {
    path_.emplace_back("[]");
    return true;
  }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool InVocabPair() const {
    return path_.size() == 4 && path_[0] == "model" && path_[1] == "vocab" && path_[2] == "[]" &&
           path_[3] == "[]";
  }
  bool Value() { return true; }
  bool End() {
    path_.pop_back();
    return true;
  }
  std::vector<std::string> path_;
};

}  // namespace

std::optional<std::vector<double>> UnigramScoresAsSerde(std::string_view json_text) {
  ScoreCollector collector;
  if (!nlohmann::json::sax_parse(json_text.begin(), json_text.end(), &collector)) {
    return std::nullopt;
  }
  return std::move(collector.scores);
}

}  // namespace modelpool::text_internal
