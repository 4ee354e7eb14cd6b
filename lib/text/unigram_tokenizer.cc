#include "modelpool/text/unigram_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/text/pipeline_internal.h"
#include "lib/text/serde_float_internal.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/tokenizer_json_internal.h"
#include "lib/text/unicode_classes_internal.h"
#include "lib/text/unigram_lattice_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool {

using text_internal::AddedToken;
using text_internal::InvalidFile;
using text_internal::Json;
using text_internal::TypeOf;

namespace {

// The reference's `K_UNK_PENALTY`: an unknown character scores this much below the worst piece.
constexpr double kUnkPenalty = 10.0;
constexpr size_t kMaxPieceBytes = 8000;

enum class Prepend { kAlways, kFirst, kNever };

}  // namespace

struct UnigramTokenizer::Impl {
  std::vector<std::pair<std::string, double>> pieces;
  absl::flat_hash_map<std::string, int32_t> ids;  // a repeated piece keeps its last id
  text_internal::PieceTrie<double> trie;
  double min_score = std::numeric_limits<double>::infinity();
  int32_t unk_id = -1;
  bool byte_fallback = false;
  std::array<int32_t, 256> byte_ids{};  // <0xXX>, or -1

  text_internal::Normalizer normalizer;
  text_internal::AddedVocabulary added;
  bool whitespace_split = false;
  bool metaspace = false;
  std::string replacement = "\xE2\x96\x81";
  Prepend prepend = Prepend::kAlways;
  bool split = true;
  bool metaspace_decoder = false;
  Prepend decoder_prepend = Prepend::kAlways;
  std::string decoder_replacement = "\xE2\x96\x81";
  std::vector<int32_t> before, after;
  int32_t pad_id = 0;
  int32_t model_max_length = 0;

  int32_t IdOf(std::string_view piece) const {
    const auto it = ids.find(absl::string_view(piece.data(), piece.size()));
    return it == ids.end() ? -1 : it->second;
  }
  void EncodePiece(std::string_view piece, bool at_start, std::vector<int32_t>* out) const;
  void EncodeWord(std::string_view word, bool at_start, std::vector<int32_t>* out) const;
  void Segment(const std::string& word, std::vector<int32_t>* out) const;
  absl::Status ParsePreTokenizer(const std::string& file, const Json& section);
};

// The pre-tokenizer: WhitespaceSplit, then Metaspace.
void UnigramTokenizer::Impl::EncodePiece(std::string_view piece, bool at_start,
                                         std::vector<int32_t>* out) const {
  if (!whitespace_split) {
    EncodeWord(piece, at_start, out);
    return;
  }
  size_t i = 0;
  while (i < piece.size()) {
    size_t begin = i;
    for (; begin < piece.size();) {
      char32_t c;
      const int len = text_internal::DecodeUtf8(piece.data() + begin, &c);
      if (!text_internal::IsWhiteSpace(c)) break;
      begin += len;
    }
    size_t end = begin;
    for (; end < piece.size();) {
      char32_t c;
      const int len = text_internal::DecodeUtf8(piece.data() + end, &c);
      if (text_internal::IsWhiteSpace(c)) break;
      end += len;
    }
    if (end > begin) EncodeWord(piece.substr(begin, end - begin), at_start && begin == 0, out);
    i = end;
  }
}

void UnigramTokenizer::Impl::EncodeWord(std::string_view word, bool at_start,
                                        std::vector<int32_t>* out) const {
  thread_local std::string text;
  text.clear();
  if (metaspace) {
    const bool add = prepend == Prepend::kAlways || (prepend == Prepend::kFirst && at_start);
    // Spaces become the replacement first, so a word starting with one gets no other.
    if (add && !word.starts_with(replacement) && !word.starts_with(' ')) text = replacement;
    for (const char c : word) {
      if (c == ' ') {
        text += replacement;
      } else {
        text.push_back(c);
      }
    }
  } else {
    text.assign(word);
  }
  if (!metaspace || !split) {
    Segment(text, out);
    return;
  }
  // Each U+2581 starts a word.
  thread_local std::string part;
  size_t start = 0;
  while (start < text.size()) {
    size_t next = text.find(replacement, start + 1);
    if (next == std::string::npos) next = text.size();
    part.assign(text, start, next - start);
    Segment(part, out);
    start = next;
  }
}

// The reference's `Unigram::encode_optimized` and `tokenize`: the best path, runs of unknown
// characters fused into one string, each string then looked up (its bytes with byte_fallback).
void UnigramTokenizer::Impl::Segment(const std::string& word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  thread_local std::vector<text_internal::BestPath<double>> best;
  text_internal::ViterbiForward<double>(trie, word, min_score - kUnkPenalty, unk_id, 0, &best);
  thread_local std::vector<std::pair<int64_t, int64_t>> spans;  // [start, end) of each token
  thread_local std::vector<int32_t> span_ids;
  spans.clear();
  span_ids.clear();
  for (int64_t end = static_cast<int64_t>(word.size()); end > 0;) {
    const text_internal::BestPath<double>& node = best[end];
    const bool unk = node.id == unk_id;
    if (unk && !span_ids.empty() && span_ids.back() == unk_id && spans.back().second < 0) {
      spans.back().first = node.starts_at;  // fuse with the unk run after it
    } else {
      spans.emplace_back(node.starts_at, unk ? -end : end);
      span_ids.push_back(node.id);
    }
    end = node.starts_at;
  }
  for (size_t k = spans.size(); k-- > 0;) {
    const int64_t start = spans[k].first;
    const int64_t end = spans[k].second < 0 ? -spans[k].second : spans[k].second;
    const std::string_view token = std::string_view(word).substr(start, end - start);
    if (span_ids[k] != unk_id) {
      out->push_back(span_ids[k]);
      continue;
    }
    if (const int32_t id = IdOf(token); id >= 0) {
      out->push_back(id);
      continue;
    }
    if (byte_fallback && std::all_of(token.begin(), token.end(), [&](char c) {
          return byte_ids[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (const char c : token) out->push_back(byte_ids[static_cast<unsigned char>(c)]);
      continue;
    }
    out->push_back(unk_id);
  }
}

UnigramTokenizer::UnigramTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UnigramTokenizer::~UnigramTokenizer() = default;

namespace {

absl::Status ParsePrepend(const std::string& file, const Json& section, Prepend* out) {
  const std::string scheme = text_internal::StringOr(section, "prepend_scheme", "");
  if (scheme.empty()) {
    // Older files say `add_prefix_space`.
    *out = section.value("add_prefix_space", true) ? Prepend::kAlways : Prepend::kNever;
  } else if (scheme == "always") {
    *out = Prepend::kAlways;
  } else if (scheme == "first") {
    *out = Prepend::kFirst;
  } else if (scheme == "never") {
    *out = Prepend::kNever;
  } else {
    return InvalidFile(file, "Metaspace prepend_scheme `" + scheme + "` is unknown");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status UnigramTokenizer::Impl::ParsePreTokenizer(const std::string& file,
                                                       const Json& section) {
  Impl* const impl = this;
  const std::string type = TypeOf(section);
  if (type.empty()) return absl::OkStatus();
  if (type == "Sequence") {
    for (const Json& part : section.at("pretokenizers")) {
      MODELPOOL_RETURN_IF_ERROR(ParsePreTokenizer(file, part));
    }
    return absl::OkStatus();
  }
  if (type == "WhitespaceSplit" && !impl->metaspace) {
    impl->whitespace_split = true;
    return absl::OkStatus();
  }
  if (type == "Metaspace" && !impl->metaspace) {
    impl->metaspace = true;
    impl->replacement = section.at("replacement").get<std::string>();
    if (impl->replacement.empty() || text_internal::CountUtf8Chars(impl->replacement) != 1) {
      return InvalidFile(file, "pre_tokenizer Metaspace replacement is not one character");
    }
    impl->split = section.value("split", true);
    return ParsePrepend(file, section, &impl->prepend);
  }
  return InvalidFile(file, "pre_tokenizer `" + type +
                               "` is not supported with a Unigram model (only WhitespaceSplit "
                               "then Metaspace)");
}

absl::StatusOr<std::unique_ptr<UnigramTokenizer>> UnigramTokenizer::FromTokenizerJson(
    const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  const std::string& file = tokenizer_json;
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, text_internal::ReadFileToString(file));
  MODELPOOL_ASSIGN_OR_RETURN(const Json json, text_internal::ReadJsonObject(file));
  MODELPOOL_ASSIGN_OR_RETURN(const text_internal::TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  // See Note [Scores read as the tokenizers library reads them].
  const std::optional<std::vector<double>> scores = text_internal::UnigramScoresAsSerde(text);
  auto impl = std::make_unique<Impl>();
  std::vector<AddedToken> tokens;
  try {
    const Json& model = json.at("model");
    if (TypeOf(model) != "Unigram") {
      return InvalidFile(file, "model `" + TypeOf(model) + "` is not Unigram");
    }
    const Json& vocab = model.at("vocab");
    if (!vocab.is_array() || vocab.empty()) {
      return InvalidFile(file, "model.vocab is not a non-empty list");
    }
    if (vocab.size() >= (1u << 24)) return InvalidFile(file, "model.vocab is too large");
    for (size_t id = 0; id < vocab.size(); ++id) {
      const Json& entry = vocab[id];
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() ||
          !entry[1].is_number()) {
        return InvalidFile(file, "model.vocab[" + std::to_string(id) + "] is not [piece, score]");
      }
      std::string piece = entry[0].get<std::string>();
      if (piece.size() >= kMaxPieceBytes) {
        return InvalidFile(file, "model.vocab[" + std::to_string(id) + "] is too long");
      }
      const double score = scores.has_value() && scores->size() == vocab.size()
                               ? (*scores)[id]
                               : entry[1].get<double>();
      impl->min_score = std::min(impl->min_score, score);
      impl->ids[piece] = static_cast<int32_t>(id);
      impl->pieces.emplace_back(std::move(piece), score);
    }
    const Json unk = model.value("unk_id", Json());
    if (!unk.is_number_integer() || unk.get<int64_t>() < 0 ||
        unk.get<int64_t>() >= static_cast<int64_t>(vocab.size())) {
      return InvalidFile(file, "model.unk_id is not an id of model.vocab");
    }
    impl->unk_id = unk.get<int32_t>();
    impl->byte_fallback = model.value("byte_fallback", false);
    MODELPOOL_ASSIGN_OR_RETURN(impl->normalizer, text_internal::Normalizer::FromJson(
                                                     file, json.value("normalizer", Json())));
    MODELPOOL_RETURN_IF_ERROR(impl->ParsePreTokenizer(file, json.value("pre_tokenizer", Json())));
    MODELPOOL_RETURN_IF_ERROR(text_internal::ParsePostProcessor(
        file, json.value("post_processor", Json()), &impl->before, &impl->after));
    const Json decoder = json.value("decoder", Json());
    const std::string decoder_type = TypeOf(decoder);
    if (decoder_type == "Metaspace") {
      impl->metaspace_decoder = true;
      impl->decoder_replacement = decoder.at("replacement").get<std::string>();
      MODELPOOL_RETURN_IF_ERROR(ParsePrepend(file, decoder, &impl->decoder_prepend));
    } else if (!decoder_type.empty()) {
      return InvalidFile(file, "decoder `" + decoder_type +
                                   "` is not supported with a Unigram model (only Metaspace)");
    }
    MODELPOOL_RETURN_IF_ERROR(
        text_internal::ParseAddedTokens(file, json.value("added_tokens", Json()), &tokens));
  } catch (const Json::exception& e) {
    return InvalidFile(file, std::string("malformed: ") + e.what());
  }
  std::vector<text_internal::PieceTrie<double>::Key> keys;
  for (const auto& [piece, id] : impl->ids) {
    if (!piece.empty()) keys.push_back({piece, id, impl->pieces[id].second});
  }
  if (!impl->trie.Build(std::move(keys))) return InvalidFile(file, "model.vocab is too large");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    impl->byte_ids[b] = impl->IdOf(name);
  }
  impl->added.Build(tokens, impl->normalizer, static_cast<int32_t>(impl->pieces.size()));
  const auto size = static_cast<int32_t>(impl->added.content.size());
  for (const std::vector<int32_t>* list : {&impl->before, &impl->after}) {
    for (const int32_t id : *list) {
      if (id < 0 || id >= size) {
        return InvalidFile(file, "post_processor id " + std::to_string(id) + " is out of range");
      }
    }
  }
  impl->model_max_length = config.model_max_length;
  const int32_t pad = impl->IdOf(config.pad_token.value_or("<pad>"));
  impl->pad_id = pad >= 0 ? pad : 0;
  return std::unique_ptr<UnigramTokenizer>(new UnigramTokenizer(std::move(impl)));
}

std::vector<int32_t> UnigramTokenizer::Encode(std::string_view text, const EncodeOptions& options,
                                              bool* truncated) const {
  const Impl& impl = *impl_;
  std::string storage;
  text = text_internal::ValidUtf8(text, &storage);
  return text_internal::FrameIds(
      impl.before, impl.after, options, truncated, [&](std::vector<int32_t>* ids) {
        text_internal::SplitOffAddedTokens(
            text, impl.added, impl.normalizer, ids,
            [&](std::string_view piece, bool at_start) { impl.EncodePiece(piece, at_start, ids); });
      });
}

std::string UnigramTokenizer::Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string text;
  bool first = true;
  for (const int32_t id : ids) {
    std::string_view token;
    if (impl.added.IsAdded(id)) {
      if (skip_special_tokens && impl.added.special[id]) continue;
      token = impl.added.content[id];
    } else if (id >= 0 && id < static_cast<int32_t>(impl.pieces.size())) {
      token = impl.pieces[id].first;
    } else {
      continue;
    }
    if (!impl.metaspace_decoder) {
      if (!first) text.push_back(' ');
      text += token;
      first = false;
      continue;
    }
    const std::string_view mark = impl.decoder_replacement;
    for (size_t i = 0; i < token.size();) {
      if (!mark.empty() && token.substr(i).starts_with(mark)) {
        if (!first || impl.decoder_prepend == Prepend::kNever) text.push_back(' ');
        i += mark.size();
      } else {
        text.push_back(token[i++]);
      }
    }
    first = false;
  }
  return text;
}

int32_t UnigramTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->added.content.size());
}
int32_t UnigramTokenizer::pad_id() const { return impl_->pad_id; }
int32_t UnigramTokenizer::model_max_length() const { return impl_->model_max_length; }

int32_t UnigramTokenizer::TokenToId(std::string_view token) const {
  for (int32_t id = 0; id < static_cast<int32_t>(impl_->added.content.size()); ++id) {
    if (impl_->added.IsAdded(id) && impl_->added.content[id] == token) return id;
  }
  return impl_->IdOf(token);
}

}  // namespace modelpool
