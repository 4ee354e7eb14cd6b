#include "modelpool/text/wordpiece_tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/text/added_tokens_internal.h"
#include "lib/text/bert_normalizer_internal.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/tokenizer_json_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

using text_internal::AddedToken;
using text_internal::AddedTokenMatcher;
using text_internal::BertCharClassOf;
using text_internal::BertNormalizerOptions;
using text_internal::Json;
using text_internal::ParseAddedTokens;
using text_internal::ParsePostProcessor;
using text_internal::TokenizerConfig;
using text_internal::TypeOf;

absl::Status Invalid(const std::string& file, const std::string& what) {
  return text_internal::InvalidFile(file, what);
}

struct StringViewHash {
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};
using Vocab = absl::flat_hash_map<std::string_view, int32_t, StringViewHash>;

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

bool IsWhitespace(char32_t c) { return BertCharClassOf(c) & text_internal::kBertWhitespace; }

// The splits of `BertPreTokenizer` for an ASCII byte.
enum AsciiKind : uint8_t { kWord, kSpace, kPunct };

std::array<AsciiKind, 128> MakeAsciiKinds() {
  std::array<AsciiKind, 128> kinds;
  for (char32_t c = 0; c < 128; ++c) {
    const uint8_t cls = BertCharClassOf(c);
    kinds[c] = (cls & text_internal::kBertWhitespace)    ? kSpace
               : (cls & text_internal::kBertPunctuation) ? kPunct
                                                         : kWord;
  }
  return kinds;
}

}  // namespace

struct WordPieceTokenizer::Impl {
  // Model.
  std::vector<std::string> model_tokens;  // by id; `vocab` points into it, so never resized
  std::vector<std::string> tokens;        // by id, added tokens included; empty where none
  Vocab vocab;                            // every model token
  Vocab continuations;                    // tokens that start with `prefix`, without it
  size_t max_token_bytes = 0;
  size_t max_continuation_bytes = 0;
  std::string prefix = "##";
  int32_t unk_id = -1;
  int64_t max_input_chars_per_word = 100;

  // Pipeline.
  std::optional<BertNormalizerOptions> normalizer;
  AddedTokenMatcher raw_tokens;         // matched before normalization
  AddedTokenMatcher normalized_tokens;  // matched in normalized text
  std::vector<int32_t> before;          // special tokens around the text
  std::vector<int32_t> after;

  // Decoding.
  std::vector<bool> special;  // by id
  bool wordpiece_decoder = true;
  std::string decoder_prefix = "##";
  bool cleanup = true;

  int32_t pad_id = 0;
  int32_t model_max_length = 0;

  void AddWord(std::string_view word, std::vector<int32_t>* ids) const;
  void AddWords(std::string_view normalized, std::vector<int32_t>* ids) const;
  void AddText(std::string_view piece, std::string* scratch, std::vector<int32_t>* ids) const;
  // Indexes `model_tokens` and sets up the rest once the files are read.
  absl::Status Finish(const std::string& file, const std::string& unk_token,
                      const std::vector<AddedToken>& added, const TokenizerConfig& config);
};

// One word of the pre-tokenizer: the WordPiece model's greedy longest-match-first.
void WordPieceTokenizer::Impl::AddWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (text_internal::CountUtf8Chars(word) > max_input_chars_per_word) {
    ids->push_back(unk_id);
    return;
  }
  const size_t mark = ids->size();
  size_t start = 0;
  while (start < word.size()) {
    const Vocab& map = start == 0 ? vocab : continuations;
    size_t end =
        std::min(word.size(), start + (start == 0 ? max_token_bytes : max_continuation_bytes));
    while (end > start && end < word.size() && IsContinuationByte(word[end])) --end;
    int32_t id = -1;
    while (end > start) {
      const auto it = map.find(word.substr(start, end - start));
      if (it != map.end()) {
        id = it->second;
        break;
      }
      do {
        --end;
      } while (end > start && IsContinuationByte(word[end]));
    }
    if (id < 0) {
      ids->resize(mark);
      ids->push_back(unk_id);
      return;
    }
    ids->push_back(id);
    start = end;
  }
}

// `BertPreTokenizer`: whitespace ends a word and is dropped, punctuation is a word of its own.
void WordPieceTokenizer::Impl::AddWords(std::string_view text, std::vector<int32_t>* ids) const {
  static const std::array<AsciiKind, 128> kKinds = MakeAsciiKinds();
  size_t word_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    AsciiKind kind;
    int len = 1;
    if (b < 0x80) {
      kind = kKinds[b];
    } else {
      char32_t c;
      len = text_internal::DecodeUtf8(text.data() + i, &c);
      const uint8_t cls = BertCharClassOf(c);
      kind = (cls & text_internal::kBertWhitespace)    ? kSpace
             : (cls & text_internal::kBertPunctuation) ? kPunct
                                                       : kWord;
    }
    if (kind != kWord) {
      if (word_start < i) AddWord(text.substr(word_start, i - word_start), ids);
      if (kind == kPunct) AddWord(text.substr(i, len), ids);
      word_start = i + len;
    }
    i += len;
  }
  if (word_start < text.size()) AddWord(text.substr(word_start), ids);
}

// Text between raw added tokens: normalized, then split on normalized added tokens.
void WordPieceTokenizer::Impl::AddText(std::string_view piece, std::string* scratch,
                                       std::vector<int32_t>* ids) const {
  std::string_view normalized = piece;
  if (normalizer.has_value()) {
    scratch->clear();
    text_internal::BertNormalize(piece, *normalizer, scratch);
    normalized = *scratch;
  }
  normalized_tokens.Split(normalized, [&](std::string_view part, int32_t id) {
    if (id >= 0) {
      ids->push_back(id);
    } else {
      AddWords(part, ids);
    }
  });
}

absl::Status WordPieceTokenizer::Impl::Finish(const std::string& file, const std::string& unk_token,
                                              const std::vector<AddedToken>& added,
                                              const TokenizerConfig& config) {
  for (int32_t id = 0; id < static_cast<int32_t>(model_tokens.size()); ++id) {
    // A repeated token keeps its last id, as the reference's vocabulary map does.
    if (!model_tokens[id].empty()) vocab.insert_or_assign(model_tokens[id], id);
  }
  if (const auto it = vocab.find(unk_token); it != vocab.end()) unk_id = it->second;
  for (const auto& [token, id] : vocab) {
    max_token_bytes = std::max(max_token_bytes, token.size());
    if (token.size() >= prefix.size() && token.compare(0, prefix.size(), prefix) == 0) {
      const std::string_view rest = token.substr(prefix.size());
      continuations.emplace(rest, id);
      max_continuation_bytes = std::max(max_continuation_bytes, rest.size());
    }
  }
  tokens = model_tokens;
  int32_t size = static_cast<int32_t>(tokens.size());
  for (const AddedToken& token : added) size = std::max(size, token.id + 1);
  tokens.resize(size);
  special.assign(size, false);
  for (const AddedToken& token : added) {
    tokens[token.id] = token.content;
    special[token.id] = token.special;
    (token.normalized ? normalized_tokens : raw_tokens).Add(token);
  }
  // An added token with `normalized` matches its normalized form.
  if (normalizer.has_value()) {
    AddedTokenMatcher normalized_forms;
    for (const AddedToken& token : added) {
      if (!token.normalized) continue;
      AddedToken form = token;
      form.content.clear();
      text_internal::BertNormalize(token.content, *normalizer, &form.content);
      normalized_forms.Add(form);
    }
    normalized_tokens = std::move(normalized_forms);
  }
  pad_id = 0;
  const std::string pad = config.pad_token.value_or("[PAD]");
  for (int32_t id = 0; id < size; ++id) {
    if (tokens[id] == pad) {
      pad_id = id;
      break;
    }
  }
  model_max_length = config.model_max_length;
  if (normalizer.has_value()) {
    if (config.do_lower_case.has_value()) normalizer->lowercase = *config.do_lower_case;
    if (config.tokenize_chinese_chars.has_value()) {
      normalizer->handle_chinese_chars = *config.tokenize_chinese_chars;
    }
    if (config.strip_accents.has_value()) {
      normalizer->strip_accents = config.strip_accents->value_or(normalizer->lowercase);
    } else if (config.do_lower_case.has_value()) {
      // `BertTokenizerFast` passes its own `strip_accents` (None: as lowercase) along.
      normalizer->strip_accents = normalizer->lowercase;
    }
  }
  if (unk_id < 0) return Invalid(file, "the unk token " + unk_token + " is not in the vocabulary");
  for (const std::vector<int32_t>* ids : {&before, &after}) {
    for (const int32_t id : *ids) {
      if (id < 0 || id >= size) {
        return Invalid(file, "post_processor id " + std::to_string(id) + " is out of range");
      }
    }
  }
  return absl::OkStatus();
}

namespace {

absl::Status ParseNormalizer(const std::string& file, const Json& section,
                             std::optional<BertNormalizerOptions>* out) {
  const std::string type = TypeOf(section);
  if (type.empty()) return absl::OkStatus();
  if (type != "BertNormalizer") {
    return Invalid(file, "normalizer `" + type + "` is not supported (only BertNormalizer)");
  }
  BertNormalizerOptions options;
  options.clean_text = section.value("clean_text", true);
  options.handle_chinese_chars = section.value("handle_chinese_chars", true);
  options.lowercase = section.value("lowercase", true);
  // `strip_accents: null` means "as lowercase".
  const Json strip = section.value("strip_accents", Json());
  options.strip_accents = strip.is_boolean() ? strip.get<bool>() : options.lowercase;
  *out = options;
  return absl::OkStatus();
}

absl::Status ParseDecoder(const std::string& file, const Json& section, bool* wordpiece,
                          std::string* prefix, bool* cleanup) {
  const std::string type = TypeOf(section);
  *wordpiece = !type.empty();
  if (type.empty()) return absl::OkStatus();
  if (type != "WordPiece") {
    return Invalid(file, "decoder `" + type + "` is not supported (only WordPiece)");
  }
  *prefix = section.value("prefix", std::string("##"));
  *cleanup = section.value("cleanup", true);
  return absl::OkStatus();
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WordPieceTokenizer::~WordPieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromTokenizerJson(
    const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text,
                             text_internal::ReadFileToString(tokenizer_json));
  MODELPOOL_ASSIGN_OR_RETURN(const TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  const std::string& file = tokenizer_json;
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return Invalid(file, "not a JSON object");
  auto impl = std::make_unique<Impl>();
  std::vector<AddedToken> added;
  std::string unk;
  try {
    const Json& model = json.at("model");
    const std::string model_type = TypeOf(model);
    if (model_type != "WordPiece") {
      return Invalid(file, "model `" + model_type + "` is not supported (only WordPiece)");
    }
    impl->prefix = model.value("continuing_subword_prefix", std::string("##"));
    impl->max_input_chars_per_word = model.value("max_input_chars_per_word", int64_t{100});
    unk = model.value("unk_token", std::string("[UNK]"));
    const Json& vocab = model.at("vocab");
    if (!vocab.is_object() || vocab.empty()) return Invalid(file, "model.vocab is empty");
    int32_t size = 0;
    for (const auto& [token, id] : vocab.items()) {
      const int64_t value = id.get<int64_t>();
      if (value < 0 || value >= (1 << 24)) {
        return Invalid(file, "token " + token + " has id " + std::to_string(value));
      }
      size = std::max(size, static_cast<int32_t>(value) + 1);
    }
    impl->model_tokens.resize(size);
    for (const auto& [token, id] : vocab.items()) impl->model_tokens[id.get<int32_t>()] = token;

    MODELPOOL_RETURN_IF_ERROR(
        ParseNormalizer(file, json.value("normalizer", Json()), &impl->normalizer));
    const std::string pre_tokenizer = TypeOf(json.value("pre_tokenizer", Json()));
    if (pre_tokenizer != "BertPreTokenizer") {
      return Invalid(
          file, "pre_tokenizer `" + pre_tokenizer + "` is not supported (only BertPreTokenizer)");
    }
    MODELPOOL_RETURN_IF_ERROR(ParsePostProcessor(file, json.value("post_processor", Json()),
                                                 &impl->before, &impl->after));
    MODELPOOL_RETURN_IF_ERROR(ParseDecoder(file, json.value("decoder", Json()),
                                           &impl->wordpiece_decoder, &impl->decoder_prefix,
                                           &impl->cleanup));
    MODELPOOL_RETURN_IF_ERROR(ParseAddedTokens(file, json.value("added_tokens", Json()), &added));
  } catch (const Json::exception& e) {
    return Invalid(file, std::string("malformed: ") + e.what());
  }
  MODELPOOL_RETURN_IF_ERROR(impl->Finish(file, unk, added, config));
  return std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromVocabTxt(
    const std::string& vocab_txt, const std::string& tokenizer_config_json) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, text_internal::ReadFileToString(vocab_txt));
  MODELPOOL_ASSIGN_OR_RETURN(const TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  auto impl = std::make_unique<Impl>();
  // As the reference reads vocab.txt: one token per line (the line number is its id), trailing
  // whitespace trimmed.
  std::string storage;
  const std::string_view valid = text_internal::ValidUtf8(text, &storage);
  size_t start = 0;
  while (start < valid.size()) {
    size_t end = valid.find('\n', start);
    if (end == std::string_view::npos) end = valid.size();
    std::string_view line = valid.substr(start, end - start);
    while (!line.empty()) {
      size_t last = line.size() - 1;
      while (last > 0 && IsContinuationByte(line[last])) --last;
      char32_t c;
      text_internal::DecodeUtf8(line.data() + last, &c);
      if (!IsWhitespace(c)) break;
      line = line.substr(0, last);
    }
    impl->model_tokens.emplace_back(line);
    start = end + 1;
  }
  if (impl->model_tokens.empty()) return Invalid(vocab_txt, "the vocabulary is empty");
  impl->normalizer = BertNormalizerOptions{};
  std::vector<AddedToken> added;
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    for (int32_t id = 0; id < static_cast<int32_t>(impl->model_tokens.size()); ++id) {
      if (impl->model_tokens[id] == name) {
        added.push_back({.content = name, .id = id, .normalized = false, .special = true});
        break;
      }
    }
  }
  MODELPOOL_RETURN_IF_ERROR(impl->Finish(vocab_txt, "[UNK]", added, config));
  const int32_t cls = impl->vocab.contains("[CLS]") ? impl->vocab.at("[CLS]") : -1;
  const int32_t sep = impl->vocab.contains("[SEP]") ? impl->vocab.at("[SEP]") : -1;
  if (cls < 0 || sep < 0) return Invalid(vocab_txt, "[CLS] or [SEP] is not in the vocabulary");
  impl->before = {cls};
  impl->after = {sep};
  return std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer(std::move(impl)));
}

std::vector<int32_t> WordPieceTokenizer::Encode(std::string_view text, const EncodeOptions& options,
                                                bool* truncated) const {
  const Impl& impl = *impl_;
  std::string storage;
  text = text_internal::ValidUtf8(text, &storage);
  std::vector<int32_t> ids;
  ids.reserve(impl.before.size() + text.size() / 3 + impl.after.size() + 1);
  if (options.add_special_tokens) ids.insert(ids.end(), impl.before.begin(), impl.before.end());
  const size_t content_start = ids.size();
  std::string scratch;
  impl.raw_tokens.Split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
    } else {
      impl.AddText(piece, &scratch, &ids);
    }
  });
  const size_t num_special =
      options.add_special_tokens ? impl.before.size() + impl.after.size() : 0;
  bool cut = false;
  if (options.truncation && options.max_length > 0) {
    const size_t budget = static_cast<size_t>(options.max_length) > num_special
                              ? options.max_length - num_special
                              : 0;
    if (ids.size() - content_start > budget) {
      ids.resize(content_start + budget);
      cut = true;
    }
  }
  if (options.add_special_tokens) ids.insert(ids.end(), impl.after.begin(), impl.after.end());
  if (truncated != nullptr) *truncated = cut;
  return ids;
}

std::string WordPieceTokenizer::Decode(absl::Span<const int32_t> ids,
                                       bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string text;
  bool first = true;
  for (const int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(impl.tokens.size())) continue;
    if (impl.tokens[id].empty() || (skip_special_tokens && impl.special[id])) continue;
    std::string token = impl.tokens[id];
    if (!impl.wordpiece_decoder) {
      if (!first) text.push_back(' ');
      text += token;
      first = false;
      continue;
    }
    if (!first) {
      if (token.starts_with(impl.decoder_prefix)) {
        token.erase(0, impl.decoder_prefix.size());
      } else {
        token = " " + token;
      }
    }
    first = false;
    if (impl.cleanup) {
      // The decoder's cleanup, applied to each token in this order.
      static constexpr std::pair<std::string_view, std::string_view> kCleanup[] = {
          {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
          {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
          {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
      for (const auto& [from, to] : kCleanup) {
        for (size_t at = token.find(from); at != std::string::npos;
             at = token.find(from, at + to.size())) {
          token.replace(at, from.size(), to);
        }
      }
    }
    text += token;
  }
  return text;
}

int32_t WordPieceTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad_id; }
int32_t WordPieceTokenizer::model_max_length() const { return impl_->model_max_length; }

int32_t WordPieceTokenizer::TokenToId(std::string_view token) const {
  for (int32_t id = 0; id < static_cast<int32_t>(impl_->tokens.size()); ++id) {
    if (impl_->special[id] && impl_->tokens[id] == token) return id;
  }
  const auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

}  // namespace modelpool
