#include "modelpool/text/bpe_tokenizer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "lib/text/bpe_model_internal.h"
#include "lib/text/byte_level_internal.h"
#include "lib/text/pipeline_internal.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/tokenizer_json_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool {

using text_internal::AddedToken;
using text_internal::InvalidFile;
using text_internal::Json;
using text_internal::TypeOf;

struct BpeTokenizer::Impl {
  text_internal::BpeModel model;
  text_internal::Normalizer normalizer;
  text_internal::AddedVocabulary added;
  bool add_prefix_space = false;
  bool use_regex = true;
  bool byte_level_decoder = true;  // else tokens are joined with spaces
  std::vector<int32_t> before, after;
  int32_t pad_id = 0;
  int32_t model_max_length = 0;

  // Pre-tokenizes one piece between added tokens and appends its ids.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const {
    std::string prefixed;
    if (add_prefix_space && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(piece);
      piece = prefixed;
    }
    if (!use_regex) {
      model.Encode(piece, ids);
      return;
    }
    text_internal::SplitGpt2(piece, [&](std::string_view word) { model.Encode(word, ids); });
  }

  absl::Status Finish(const std::string& file, const std::vector<AddedToken>& tokens,
                      const text_internal::TokenizerConfig& config);
};

absl::Status BpeTokenizer::Impl::Finish(const std::string& file,
                                        const std::vector<AddedToken>& tokens,
                                        const text_internal::TokenizerConfig& config) {
  added.Build(tokens, normalizer, model.size());
  const auto size = static_cast<int32_t>(added.content.size());
  for (const std::vector<int32_t>* list : {&before, &after}) {
    for (const int32_t id : *list) {
      if (id < 0 || id >= size) {
        return InvalidFile(file, "post_processor id " + std::to_string(id) + " is out of range");
      }
    }
  }
  model_max_length = config.model_max_length;
  const std::string pad = config.pad_token.value_or("<pad>");
  for (const AddedToken& token : tokens) {
    if (token.content == pad) pad_id = token.id;
  }
  if (pad_id == 0 && model.IdOf(pad) >= 0) pad_id = model.IdOf(pad);
  return absl::OkStatus();
}

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::~BpeTokenizer() = default;

namespace {

absl::Status ParseByteLevel(const std::string& file, const Json& section, bool* add_prefix_space,
                            bool* use_regex) {
  const std::string type = TypeOf(section);
  if (type != "ByteLevel") {
    return InvalidFile(file, "pre_tokenizer `" + type + "` is not supported with a BPE model " +
                                 "(only ByteLevel)");
  }
  *add_prefix_space = section.value("add_prefix_space", true);
  *use_regex = section.value("use_regex", true);
  return absl::OkStatus();
}

// The vocabulary of `model.vocab` or vocab.json: an object of token to id.
absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> ParseVocab(const std::string& file,
                                                                     const std::string& field,
                                                                     const Json& vocab) {
  if (!vocab.is_object()) return InvalidFile(file, field + " is not an object");
  if (vocab.empty()) return InvalidFile(file, field + " is empty");
  absl::flat_hash_map<std::string, int32_t> out;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24)) {
      return InvalidFile(file, field + ": token " + token + " has id " + id.dump());
    }
    out[token] = id.get<int32_t>();
  }
  return out;
}

using Merges = std::vector<std::pair<std::string, std::string>>;

// "a b" as the reference reads a merge: exactly one space.
bool SplitMerge(std::string_view line, std::pair<std::string, std::string>* merge) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
    return false;
  }
  *merge = {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
  return true;
}

absl::StatusOr<Merges> ParseMergesJson(const std::string& file, const Json& merges) {
  if (!merges.is_array()) return InvalidFile(file, "model.merges is not a list");
  Merges out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& merge = merges[i];
    std::pair<std::string, std::string> pair;
    if (merge.is_string()) {
      if (!SplitMerge(merge.get<std::string>(), &pair)) {
        return InvalidFile(file, "model.merges[" + std::to_string(i) + "] is not \"a b\"");
      }
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      pair = {merge[0].get<std::string>(), merge[1].get<std::string>()};
    } else {
      return InvalidFile(file, "model.merges[" + std::to_string(i) + "] is not a pair of strings");
    }
    out.push_back(std::move(pair));
  }
  return out;
}

absl::StatusOr<Merges> ReadMergesTxt(const std::string& file) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string text, text_internal::ReadFileToString(file));
  std::string storage;
  const std::string_view valid = text_internal::ValidUtf8(text, &storage);
  Merges out;
  size_t line_number = 0;
  for (size_t start = 0; start < valid.size();) {
    size_t end = valid.find('\n', start);
    if (end == std::string_view::npos) end = valid.size();
    std::string_view line = valid.substr(start, end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    start = end + 1;
    ++line_number;
    if (line.starts_with("#version")) continue;
    std::pair<std::string, std::string> pair;
    if (!SplitMerge(line, &pair)) {
      return InvalidFile(file, "line " + std::to_string(line_number) + " is not \"a b\"");
    }
    out.push_back(std::move(pair));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(
    const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  const std::string& file = tokenizer_json;
  MODELPOOL_ASSIGN_OR_RETURN(const Json json, text_internal::ReadJsonObject(file));
  MODELPOOL_ASSIGN_OR_RETURN(const text_internal::TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  auto impl = std::make_unique<Impl>();
  std::vector<AddedToken> tokens;
  try {
    const Json& model = json.at("model");
    if (TypeOf(model) != "BPE") {
      return InvalidFile(file, "model `" + TypeOf(model) + "` is not BPE");
    }
    const Json dropout = model.value("dropout", Json());
    if (!dropout.is_null() && dropout.get<double>() != 0.0) {
      return InvalidFile(file, "model.dropout is not supported (encoding would be random)");
    }
    for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (!text_internal::StringOr(model, field, "").empty()) {
        return InvalidFile(file, std::string("model.") + field + " is not supported");
      }
    }
    MODELPOOL_ASSIGN_OR_RETURN(auto vocab, ParseVocab(file, "model.vocab", model.at("vocab")));
    MODELPOOL_ASSIGN_OR_RETURN(const Merges merges, ParseMergesJson(file, model.at("merges")));
    text_internal::BpeModel::Options options;
    options.unk_token = text_internal::StringOr(model, "unk_token", "");
    options.fuse_unk = model.value("fuse_unk", false);
    options.byte_fallback = model.value("byte_fallback", false);
    options.ignore_merges = model.value("ignore_merges", false);
    if (absl::Status built = impl->model.Build(std::move(vocab), merges, options); !built.ok()) {
      return InvalidFile(file, "model: " + std::string(built.message()));
    }
    MODELPOOL_ASSIGN_OR_RETURN(impl->normalizer, text_internal::Normalizer::FromJson(
                                                     file, json.value("normalizer", Json())));
    MODELPOOL_RETURN_IF_ERROR(ParseByteLevel(file, json.value("pre_tokenizer", Json()),
                                             &impl->add_prefix_space, &impl->use_regex));
    MODELPOOL_RETURN_IF_ERROR(text_internal::ParsePostProcessor(
        file, json.value("post_processor", Json()), &impl->before, &impl->after));
    impl->byte_level_decoder = !TypeOf(json.value("decoder", Json())).empty();
    MODELPOOL_RETURN_IF_ERROR(
        text_internal::ParseAddedTokens(file, json.value("added_tokens", Json()), &tokens));
  } catch (const Json::exception& e) {
    return InvalidFile(file, std::string("malformed: ") + e.what());
  }
  MODELPOOL_RETURN_IF_ERROR(impl->Finish(file, tokens, config));
  return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(std::move(impl)));
}

namespace {

// A special token of tokenizer_config.json or special_tokens_map.json: a string or an object.
std::optional<AddedToken> SpecialToken(const Json& config, const Json& map, const char* key,
                                       const std::string& fallback, bool lstrip) {
  AddedToken token{.content = fallback, .lstrip = lstrip, .normalized = false, .special = true};
  for (const Json* source : {&map, &config}) {
    if (!source->is_object() || !source->contains(key)) continue;
    const Json& value = (*source)[key];
    if (value.is_null()) return std::nullopt;
    if (value.is_string()) {
      token.content = value.get<std::string>();
    } else if (value.is_object()) {
      token.content = text_internal::StringOr(value, "content", token.content);
      token.lstrip = value.value("lstrip", token.lstrip);
      token.rstrip = value.value("rstrip", token.rstrip);
      token.single_word = value.value("single_word", token.single_word);
    }
  }
  if (token.content.empty()) return std::nullopt;
  return token;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromVocabAndMerges(
    const std::string& vocab_json, const std::string& merges_txt,
    const std::string& tokenizer_config_json, const std::string& special_tokens_map) {
  MODELPOOL_ASSIGN_OR_RETURN(const Json vocab_object, text_internal::ReadJsonObject(vocab_json));
  MODELPOOL_ASSIGN_OR_RETURN(auto vocab, ParseVocab(vocab_json, "the vocabulary", vocab_object));
  MODELPOOL_ASSIGN_OR_RETURN(const Merges merges, ReadMergesTxt(merges_txt));
  MODELPOOL_ASSIGN_OR_RETURN(const text_internal::TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  Json config_json = Json::object();
  Json map_json = Json::object();
  if (!tokenizer_config_json.empty()) {
    MODELPOOL_ASSIGN_OR_RETURN(config_json, text_internal::ReadJsonObject(tokenizer_config_json));
  }
  if (!special_tokens_map.empty()) {
    MODELPOOL_ASSIGN_OR_RETURN(map_json, text_internal::ReadJsonObject(special_tokens_map));
  }
  auto impl = std::make_unique<Impl>();
  const std::string tokenizer_class = text_internal::StringOr(config_json, "tokenizer_class", "");
  const bool roberta = tokenizer_class.find("GPT2") == std::string::npos && vocab.contains("<s>") &&
                       vocab.contains("</s>");
  const Json add_prefix_space = config_json.value("add_prefix_space", Json());
  impl->add_prefix_space = add_prefix_space.is_boolean() && add_prefix_space.get<bool>();
  int32_t next_id = 0;
  for (const auto& [token, id] : vocab) next_id = std::max(next_id, id + 1);
  const std::string gpt2_token = "<|endoftext|>";
  struct Default {
    const char* key;
    std::string content;
    bool lstrip;
  };
  const std::vector<Default> defaults =
      roberta ? std::vector<Default>{{"bos_token", "<s>", false},   {"pad_token", "<pad>", false},
                                     {"eos_token", "</s>", false},  {"unk_token", "<unk>", false},
                                     {"sep_token", "</s>", false},  {"cls_token", "<s>", false},
                                     {"mask_token", "<mask>", true}}
              : std::vector<Default>{{"bos_token", gpt2_token, false},
                                     {"eos_token", gpt2_token, false},
                                     {"unk_token", gpt2_token, false},
                                     {"pad_token", "", false}};
  std::vector<AddedToken> tokens;
  absl::flat_hash_map<std::string, int32_t> special_ids;
  const auto id_of = [&](const std::string& content) {
    for (const AddedToken& token : tokens) {
      if (token.content == content) return token.id;
    }
    const auto it = vocab.find(content);
    return it != vocab.end() ? it->second : next_id++;
  };
  for (const Default& d : defaults) {
    std::optional<AddedToken> token =
        SpecialToken(config_json, map_json, d.key, d.content, d.lstrip);
    if (!token.has_value()) continue;
    token->id = id_of(token->content);
    special_ids[d.key] = token->id;
    tokens.push_back(*token);
  }
  // transformers keeps every added token, with its flags, in `added_tokens_decoder`.
  const Json decoder = config_json.value("added_tokens_decoder", Json());
  if (decoder.is_object()) {
    for (const auto& [key, value] : decoder.items()) {
      if (!value.is_object()) continue;
      AddedToken token;
      try {
        token.id = std::stoi(key);
      } catch (const std::exception&) {
        return InvalidFile(tokenizer_config_json,
                           "added_tokens_decoder key " + key + " is not an id");
      }
      if (token.id < 0 || token.id >= (1 << 24)) {
        return InvalidFile(tokenizer_config_json,
                           "added_tokens_decoder id " + key + " is out of range");
      }
      token.content = text_internal::StringOr(value, "content", "");
      token.lstrip = value.value("lstrip", false);
      token.rstrip = value.value("rstrip", false);
      token.normalized = value.value("normalized", false);
      token.special = value.value("special", false);
      token.single_word = value.value("single_word", false);
      if (token.content.empty()) continue;
      std::erase_if(tokens, [&](const AddedToken& t) { return t.content == token.content; });
      tokens.push_back(token);
    }
  }
  if (absl::Status built = impl->model.Build(std::move(vocab), merges, {}); !built.ok()) {
    return InvalidFile(merges_txt, std::string(built.message()));
  }
  if (roberta && special_ids.contains("cls_token") && special_ids.contains("sep_token")) {
    impl->before = {special_ids["cls_token"]};
    impl->after = {special_ids["sep_token"]};
  }
  text_internal::TokenizerConfig with_pad = config;
  if (!with_pad.pad_token.has_value() && !roberta) with_pad.pad_token = "";
  MODELPOOL_RETURN_IF_ERROR(impl->Finish(vocab_json, tokens, with_pad));
  return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(std::move(impl)));
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text, const EncodeOptions& options,
                                          bool* truncated) const {
  const Impl& impl = *impl_;
  std::string storage;
  text = text_internal::ValidUtf8(text, &storage);
  return text_internal::FrameIds(
      impl.before, impl.after, options, truncated, [&](std::vector<int32_t>* ids) {
        ids->reserve(ids->size() + text.size() / 3 + 2);
        text_internal::SplitOffAddedTokens(
            text, impl.added, impl.normalizer, ids,
            [&](std::string_view piece, bool) { impl.EncodePiece(piece, ids); });
      });
}

std::string BpeTokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string bytes;
  bool first = true;
  for (const int32_t id : ids) {
    const std::string* token = nullptr;
    if (impl.added.IsAdded(id)) {
      if (skip_special_tokens && impl.added.special[id]) continue;
      token = &impl.added.content[id];
    } else {
      token = impl.model.TokenOf(id);
    }
    if (token == nullptr) continue;
    if (!impl.byte_level_decoder) {
      if (!first) bytes.push_back(' ');
      bytes += *token;
      first = false;
      continue;
    }
    // A token all of whose characters are byte-level ones gives those bytes, any other its
    // own text.
    std::string decoded;
    bool all_bytes = true;
    for (size_t i = 0; i < token->size() && all_bytes;) {
      char32_t c;
      i += text_internal::DecodeUtf8(token->data() + i, &c);
      const int byte = text_internal::ByteOfLevelChar(c);
      all_bytes = byte >= 0;
      decoded.push_back(static_cast<char>(byte));
    }
    bytes += all_bytes ? decoded : *token;
  }
  std::string storage;
  const std::string_view valid = text_internal::ValidUtf8(bytes, &storage);
  return std::string(valid);
}

int32_t BpeTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->added.content.size());
}
int32_t BpeTokenizer::pad_id() const { return impl_->pad_id; }
int32_t BpeTokenizer::model_max_length() const { return impl_->model_max_length; }

int32_t BpeTokenizer::TokenToId(std::string_view token) const {
  for (int32_t id = 0; id < static_cast<int32_t>(impl_->added.content.size()); ++id) {
    if (impl_->added.IsAdded(id) && impl_->added.content[id] == token) return id;
  }
  return impl_->model.IdOf(token);
}

}  // namespace modelpool
