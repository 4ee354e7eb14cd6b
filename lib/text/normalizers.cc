#include <utf8proc.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "lib/text/normalizers_internal.h"
#include "lib/text/unicode_classes_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool::text_internal {
namespace {

// Note [The Precompiled normalizer of tokenizers]
// The `tokenizers` library applies a SentencePiece character map in its own way, not as
// sentencepiece does (the longest rule at each position): it walks the extended grapheme
// clusters, and a cluster of fewer than 6 bytes that starts with a rule's key is replaced
// whole by the replacement of the *shortest* such key; any other cluster goes character by
// character, each replaced by its own rule when it has one. We do the same, with utf8proc's
// grapheme boundaries (Unicode 15; the clusters under 6 bytes that this rule looks at do not
// depend on the newer Indic conjunct rules).
class Precompiled : public NormalizerStep {
 public:
  explicit Precompiled(std::string charsmap) : charsmap_(std::move(charsmap)) {}
  bool Init() { return SplitCharsMap(charsmap_, &trie_, &replacements_); }

  void Apply(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    const std::string_view in = *text;
    size_t i = 0;
    while (i < in.size()) {
      const size_t end = GraphemeEnd(in, i);
      const std::string_view grapheme = in.substr(i, end - i);
      std::string_view replacement;
      if (grapheme.size() < 6 && Transform(grapheme, &replacement)) {
        out += replacement;
      } else {
        for (size_t j = 0; j < grapheme.size();) {
          const size_t len = Utf8Length(static_cast<unsigned char>(grapheme[j]));
          const std::string_view ch = grapheme.substr(j, len);
          out += Transform(ch, &replacement) ? replacement : ch;
          j += len;
        }
      }
      i = end;
    }
    *text = std::move(out);
  }

 private:
  static size_t GraphemeEnd(std::string_view text, size_t i) {
    utf8proc_int32_t state = 0;
    char32_t c;
    i += DecodeUtf8(text.data() + i, &c);
    while (i < text.size()) {
      char32_t next;
      const int len = DecodeUtf8(text.data() + i, &next);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(c),
                                           static_cast<utf8proc_int32_t>(next), &state)) {
        break;
      }
      c = next;
      i += len;
    }
    return i;
  }

  // The replacement of the shortest rule that `chunk` starts with.
  bool Transform(std::string_view chunk, std::string_view* replacement) const {
    int32_t value = -1;
    trie_.ForEachPrefix(chunk, [&](size_t, int32_t v) {
      if (value < 0) value = v;
    });
    if (value < 0 || static_cast<size_t>(value) >= replacements_.size()) return false;
    std::string_view found = replacements_.substr(value);
    found = found.substr(0, found.find('\0'));
    std::string storage;
    if (ValidUtf8(found, &storage).data() != found.data()) return false;  // a broken map
    *replacement = found;
    return true;
  }

  std::string charsmap_;
  DartsTrie trie_;
  std::string_view replacements_;
};

class UnicodeForm : public NormalizerStep {
 public:
  explicit UnicodeForm(int options) : options_(options) {}
  void Apply(std::string* text) const override {
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text->data()),
                     static_cast<utf8proc_ssize_t>(text->size()), &out,
                     static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (n >= 0) text->assign(reinterpret_cast<const char*>(out), n);
    std::free(out);
  }

 private:
  int options_;
};

// `Replace` of each occurrence of a literal string, or (`whole_runs`) of each run of at least
// `min_count` of it.
class Replace : public NormalizerStep {
 public:
  Replace(std::string pattern, bool whole_runs, size_t min_count, std::string content)
      : pattern_(std::move(pattern)),
        whole_runs_(whole_runs),
        min_count_(min_count),
        content_(std::move(content)) {}
  void Apply(std::string* text) const override {
    std::string out;
    size_t i = 0;
    while (i < text->size()) {
      size_t run = 0;
      size_t j = i;
      while (text->compare(j, pattern_.size(), pattern_) == 0) {
        ++run;
        j += pattern_.size();
        if (!whole_runs_) break;
      }
      if (run >= min_count_) {
        out += content_;
        i = j;
      } else {
        out.push_back((*text)[i++]);
      }
    }
    *text = std::move(out);
  }

 private:
  std::string pattern_;
  bool whole_runs_;
  size_t min_count_;
  std::string content_;
};

class Strip : public NormalizerStep {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void Apply(std::string* text) const override {
    size_t begin = 0;
    size_t end = text->size();
    while (left_ && begin < end) {
      char32_t c;
      const int len = DecodeUtf8(text->data() + begin, &c);
      if (!IsWhiteSpace(c)) break;
      begin += len;
    }
    while (right_ && end > begin) {
      size_t start;
      if (!IsWhiteSpace(LastChar(std::string_view(*text).substr(0, end), &start))) break;
      end = start;
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Prepend : public NormalizerStep {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void Apply(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

// The one character (escaped or not) that a regex made of it alone, or of it and `+` or
// `{n,}`, matches runs of; `*min_count` is 1 for none and `+`.
bool ParseRepeatRegex(const std::string& regex, std::string* unit, size_t* min_count) {
  size_t i = 0;
  if (regex.empty()) return false;
  if (regex[0] == '\\') {
    if (regex.size() < 2 || std::isalnum(static_cast<unsigned char>(regex[1]))) return false;
    *unit = regex.substr(1, 1);
    i = 2;
  } else {
    const size_t len = Utf8Length(static_cast<unsigned char>(regex[0]));
    *unit = regex.substr(0, len);
    if (std::string_view("()[]{}.*+?|^$").find(regex[0]) != std::string_view::npos) return false;
    i = len;
  }
  const std::string rest = regex.substr(i);
  if (rest.empty() || rest == "+") {
    *min_count = 1;
    return true;
  }
  if (rest.size() >= 4 && rest.front() == '{' && rest.substr(rest.size() - 2) == ",}") {
    const std::string digits = rest.substr(1, rest.size() - 3);
    if (digits.empty() || digits.size() > 4 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    *min_count = std::stoul(digits);
    return *min_count >= 1;
  }
  return false;
}

}  // namespace

absl::StatusOr<Normalizer> Normalizer::FromJson(const std::string& file, const Json& section) {
  Normalizer normalizer;
  const std::string type = TypeOf(section);
  if (type.empty()) return normalizer;
  std::shared_ptr<const NormalizerStep> step;
  if (type == "Sequence") {
    for (const Json& part : section.at("normalizers")) {
      MODELPOOL_ASSIGN_OR_RETURN(Normalizer inner, FromJson(file, part));
      normalizer.steps_.insert(normalizer.steps_.end(), inner.steps_.begin(), inner.steps_.end());
    }
    return normalizer;
  }
  if (type == "Precompiled") {
    const Json& charsmap = section.at("precompiled_charsmap");
    if (charsmap.is_null()) return normalizer;
    std::string bytes;
    if (!absl::Base64Unescape(charsmap.get<std::string>(), &bytes)) {
      return InvalidFile(file, "normalizer.precompiled_charsmap is not base64");
    }
    if (bytes.empty()) return normalizer;
    auto precompiled = std::make_shared<Precompiled>(std::move(bytes));
    if (!precompiled->Init()) return InvalidFile(file, "normalizer.precompiled_charsmap is broken");
    step = std::move(precompiled);
  } else if (type == "NFC") {
    step = std::make_shared<UnicodeForm>(UTF8PROC_COMPOSE);
  } else if (type == "NFD") {
    step = std::make_shared<UnicodeForm>(UTF8PROC_DECOMPOSE);
  } else if (type == "NFKC") {
    step = std::make_shared<UnicodeForm>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  } else if (type == "NFKD") {
    step = std::make_shared<UnicodeForm>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  } else if (type == "Strip") {
    step = std::make_shared<Strip>(section.value("strip_left", true),
                                   section.value("strip_right", true));
  } else if (type == "Prepend") {
    step = std::make_shared<Prepend>(section.at("prepend").get<std::string>());
  } else if (type == "Replace") {
    const Json& pattern = section.at("pattern");
    const std::string content = section.at("content").get<std::string>();
    if (pattern.contains("String")) {
      const std::string literal = pattern["String"].get<std::string>();
      if (literal.empty()) return normalizer;
      step = std::make_shared<Replace>(literal, /*whole_runs=*/false, 1, content);
    } else {
      const std::string regex = pattern.at("Regex").get<std::string>();
      std::string unit;
      size_t min_count = 1;
      if (!ParseRepeatRegex(regex, &unit, &min_count)) {
        return InvalidFile(file, "normalizer Replace regex `" + regex +
                                     "` is not supported (only a character, with + or {n,})");
      }
      const bool whole_runs = regex.size() > unit.size() + (regex[0] == '\\' ? 1 : 0);
      step = std::make_shared<Replace>(unit, whole_runs, min_count, content);
    }
  } else {
    return InvalidFile(file, "normalizer `" + type +
                                 "` is not supported (only Precompiled, NFC, NFD, NFKC, NFKD, "
                                 "Replace, Strip, Prepend and Sequence)");
  }
  normalizer.steps_.push_back(std::move(step));
  return normalizer;
}

void Normalizer::Apply(std::string_view text, std::string* out) const {
  out->assign(text);
  for (const auto& step : steps_) step->Apply(out);
}

}  // namespace modelpool::text_internal
