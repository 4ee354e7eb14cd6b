#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "lib/text/bert_normalizer_internal.h"
#include "lib/text/utf8_internal.h"

namespace modelpool::text_internal {
namespace {

struct CharRange {
  char32_t first;
  char32_t last;
  uint8_t classes;
};

// Unassigned in 9.0 = 1, Mn = 2, P* = 4, Cc/Cf/Co = 8 (8.0), as BertCharClass says.
constexpr CharRange kUnicodeRanges[] = {
#include "lib/text/bert_unicode_tables.inc"
};

// HF `is_chinese_char`.
constexpr CharRange kChineseRanges[] = {
    {0x4E00, 0x9FFF, 0},   {0x3400, 0x4DBF, 0},   {0x20000, 0x2A6DF, 0}, {0x2A700, 0x2B73F, 0},
    {0x2B740, 0x2B81F, 0}, {0x2B920, 0x2CEAF, 0}, {0xF900, 0xFAFF, 0},   {0x2F800, 0x2FA1F, 0},
};

// Rust's `char::is_whitespace`: the White_Space property.
constexpr char32_t kWhitespace[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,
                                    0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                    0x2029, 0x202F, 0x205F, 0x3000};

// Lowercase mappings added in Unicode 16 and 17, which Rust has and utf8proc 2.8 (Unicode 15)
// lacks: single letters, then the Garay and Beria Erfe capitals, which map by an offset.
constexpr std::pair<char32_t, char32_t> kLowercaseAdded[] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0x0264}, {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF},
    {0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D5}, {0xA7DA, 0xA7DB}, {0xA7DC, 0x019B},
};
constexpr CharRange kLowercaseAddedRanges[] = {{0x10D50, 0x10D65, 0}, {0x16EA0, 0x16EB8, 0}};
constexpr char32_t kLowercaseAddedOffsets[] = {0x20, 0x1B};

// Two-stage table: 256-character blocks, identical blocks shared.
class ClassTable {
 public:
  ClassTable() {
    std::vector<uint8_t> flat(0x110000, 0);
    for (const CharRange& r : kUnicodeRanges) {
      for (char32_t c = r.first; c <= r.last; ++c) flat[c] = r.classes;
    }
    for (char32_t c : {U'\t', U'\n', U'\r'}) flat[c] &= ~kBertControl;
    for (char32_t c = 0; c < 0x80; ++c) {
      // Rust's `is_ascii_punctuation`.
      if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
          (c >= 123 && c <= 126)) {
        flat[c] |= kBertPunctuation;
      }
    }
    for (char32_t c : kWhitespace) flat[c] |= kBertWhitespace;
    for (const CharRange& r : kChineseRanges) {
      for (char32_t c = r.first; c <= r.last; ++c) flat[c] |= kBertChinese;
    }
    for (char32_t block = 0; block < kBlocks; ++block) {
      const uint8_t* data = &flat[block * 256];
      size_t found = blocks_.size() / 256;
      for (size_t b = 0; b < blocks_.size() / 256; ++b) {
        if (std::equal(data, data + 256, blocks_.begin() + b * 256)) {
          found = b;
          break;
        }
      }
      if (found == blocks_.size() / 256) blocks_.insert(blocks_.end(), data, data + 256);
      index_[block] = static_cast<uint16_t>(found);
    }
  }

  uint8_t Get(char32_t c) const { return blocks_[index_[c >> 8] * 256 + (c & 0xFF)]; }

 private:
  static constexpr char32_t kBlocks = 0x110000 / 256;
  std::array<uint16_t, kBlocks> index_;
  std::vector<uint8_t> blocks_;
};

const ClassTable& Classes() {
  static const ClassTable* table = new ClassTable;
  return *table;
}

void AppendLowercase(char32_t c, bool lowercase, std::string* out) {
  if (lowercase) {
    if (c == 0x130) {  // the one full lowercase mapping of several characters
      out->push_back('i');
      AppendUtf8(0x307, out);
      return;
    }
    char32_t lower = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    if (lower == c) {
      for (const auto& [upper, added] : kLowercaseAdded) {
        if (c == upper) lower = added;
      }
      for (int r = 0; r < 2; ++r) {
        if (c >= kLowercaseAddedRanges[r].first && c <= kLowercaseAddedRanges[r].last) {
          lower = c + kLowercaseAddedOffsets[r];
        }
      }
    }
    c = lower;
  }
  AppendUtf8(c, out);
}

// Streams characters through NFD (canonical decomposition and ordering), removing Mn and
// lowercasing on the way out.
class Pipeline {
 public:
  Pipeline(const BertNormalizerOptions& options, std::string* out) : options_(options), out_(out) {}

  // One character after clean_text and handle_chinese_chars.
  void Add(char32_t c, uint8_t classes) {
    if (!options_.strip_accents) {
      AppendLowercase(c, options_.lowercase, out_);
      return;
    }
    if (c < 0xC0 || (classes & kBertUnassigned)) {
      // No decomposition and combining class 0 (Latin-1 below U+00C0 has neither).
      Flush();
      Emit(c);
      return;
    }
    utf8proc_int32_t decomposed[8];
    const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), decomposed,
                                                       8, UTF8PROC_DECOMPOSE, nullptr);
    for (utf8proc_ssize_t i = 0; i < n && i < 8; ++i) {
      const auto d = static_cast<char32_t>(decomposed[i]);
      const int ccc = utf8proc_get_property(decomposed[i])->combining_class;
      if (ccc == 0) {
        Flush();
        Emit(d);
      } else {
        pending_.push_back({d, ccc});
      }
    }
  }

  // Ends a run of combining marks: they leave in canonical order.
  void Flush() {
    if (pending_.empty()) return;
    std::stable_sort(pending_.begin(), pending_.end(),
                     [](const Mark& a, const Mark& b) { return a.ccc < b.ccc; });
    for (const Mark& m : pending_) Emit(m.c);
    pending_.clear();
  }

 private:
  struct Mark {
    char32_t c;
    int ccc;
  };

  void Emit(char32_t c) {
    if (Classes().Get(c) & kBertNonspacingMark) return;
    AppendLowercase(c, options_.lowercase, out_);
  }

  const BertNormalizerOptions& options_;
  std::string* out_;
  std::vector<Mark> pending_;
};

// What clean_text and lowercase do to an ASCII byte.
struct AsciiAction {
  std::array<char, 128> to;    // the byte it becomes
  std::array<bool, 128> drop;  // removed by clean_text
};

AsciiAction MakeAsciiAction(const BertNormalizerOptions& options) {
  AsciiAction a;
  for (int c = 0; c < 128; ++c) {
    const uint8_t classes = Classes().Get(c);
    a.drop[c] = options.clean_text && (c == 0 || (classes & kBertControl));
    char to = static_cast<char>(c);
    if (options.clean_text && (classes & kBertWhitespace)) to = ' ';
    if (options.lowercase && c >= 'A' && c <= 'Z') to = static_cast<char>(c + 32);
    a.to[c] = to;
  }
  return a;
}

}  // namespace

uint8_t BertCharClassOf(char32_t c) { return c < 0x110000 ? Classes().Get(c) : 0; }

void BertNormalize(std::string_view text, const BertNormalizerOptions& options, std::string* out) {
  static const AsciiAction kActions[16] = {
#define MODELPOOL_ACTION(i) \
  MakeAsciiAction({(i & 1) != 0, (i & 2) != 0, (i & 4) != 0, (i & 8) != 0})
      MODELPOOL_ACTION(0),  MODELPOOL_ACTION(1),  MODELPOOL_ACTION(2),  MODELPOOL_ACTION(3),
      MODELPOOL_ACTION(4),  MODELPOOL_ACTION(5),  MODELPOOL_ACTION(6),  MODELPOOL_ACTION(7),
      MODELPOOL_ACTION(8),  MODELPOOL_ACTION(9),  MODELPOOL_ACTION(10), MODELPOOL_ACTION(11),
      MODELPOOL_ACTION(12), MODELPOOL_ACTION(13), MODELPOOL_ACTION(14), MODELPOOL_ACTION(15),
#undef MODELPOOL_ACTION
  };
  const AsciiAction& ascii = kActions[options.clean_text | options.handle_chinese_chars << 1 |
                                      options.strip_accents << 2 | options.lowercase << 3];
  const ClassTable& classes = Classes();
  Pipeline pipeline(options, out);
  out->reserve(out->size() + text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      pipeline.Flush();
      if (!ascii.drop[b]) out->push_back(ascii.to[b]);
      ++i;
      continue;
    }
    char32_t c;
    i += DecodeUtf8(text.data() + i, &c);
    uint8_t cls = classes.Get(c);
    if (options.clean_text) {
      if (c == kReplacementChar || (cls & kBertControl)) continue;
      if (cls & kBertWhitespace) {
        c = ' ';
        cls = classes.Get(c);
      }
    }
    if (options.handle_chinese_chars && (cls & kBertChinese)) {
      pipeline.Add(' ', classes.Get(' '));
      pipeline.Add(c, cls);
      pipeline.Add(' ', classes.Get(' '));
      continue;
    }
    pipeline.Add(c, cls);
  }
  pipeline.Flush();
}

}  // namespace modelpool::text_internal
