#include "modelpool/text/sentencepiece_tokenizer.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/text/darts_internal.h"
#include "lib/text/sentencepiece_model_internal.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

using text_internal::SentencePieceModel;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581
// sentencepiece's `kUnkPenalty`: an unknown character scores this much below the worst piece.
constexpr float kUnkPenalty = 10.0f;
// sentencepiece refuses pieces this long.
constexpr size_t kMaxPieceBytes = 8000;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A byte trie over the pieces, walked from each character of the text in the Viterbi search.
class PieceTrie {
 public:
  // `keys` must be distinct and non-empty.
  void Build(std::vector<std::pair<std::string_view, int32_t>> keys) {
    std::sort(keys.begin(), keys.end());
    nodes_.assign(1, Node{});
    labels_.clear();
    targets_.clear();
    struct Task {
      int32_t node;
      size_t lo, hi, depth;
    };
    std::vector<Task> tasks = {{0, 0, keys.size(), 0}};
    while (!tasks.empty()) {
      Task t = tasks.back();
      tasks.pop_back();
      if (t.lo < t.hi && keys[t.lo].first.size() == t.depth) {
        nodes_[t.node].value = keys[t.lo].second;
        ++t.lo;
      }
      // Keys [lo, hi) share `depth` bytes and are longer: one child per next byte.
      const auto first = static_cast<uint32_t>(labels_.size());
      for (size_t i = t.lo; i < t.hi;) {
        const auto byte = static_cast<unsigned char>(keys[i].first[t.depth]);
        size_t j = i;
        while (j < t.hi && static_cast<unsigned char>(keys[j].first[t.depth]) == byte) ++j;
        labels_.push_back(byte);
        targets_.push_back(static_cast<int32_t>(nodes_.size()));
        tasks.push_back({static_cast<int32_t>(nodes_.size()), i, j, t.depth + 1});
        nodes_.emplace_back();
        i = j;
      }
      nodes_[t.node].first = first;
      nodes_[t.node].count = static_cast<uint32_t>(labels_.size()) - first;
    }
    root_.fill(-1);
    for (uint32_t e = nodes_[0].first; e < nodes_[0].first + nodes_[0].count; ++e) {
      root_[labels_[e]] = targets_[e];
    }
  }

  // The child of `node` along `byte`, or -1.
  int32_t Child(int32_t node, unsigned char byte) const {
    if (node == 0) return root_[byte];
    const Node& n = nodes_[node];
    const uint8_t* begin = labels_.data() + n.first;
    const uint8_t* end = begin + n.count;
    const uint8_t* it =
        n.count <= 8 ? std::find(begin, end, byte) : std::lower_bound(begin, end, byte);
    return it != end && *it == byte ? targets_[it - labels_.data()] : -1;
  }
  // The piece id ending at `node`, or -1.
  int32_t Value(int32_t node) const { return nodes_[node].value; }

 private:
  struct Node {
    int32_t value = -1;
    uint32_t first = 0;
    uint32_t count = 0;
  };
  std::vector<Node> nodes_;
  std::vector<uint8_t> labels_;
  std::vector<int32_t> targets_;
  std::array<int32_t, 256> root_{};
};

absl::Status Invalid(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(name + ": " + what);
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  SentencePieceModel model;
  PieceTrie trie;
  float min_score = FLT_MAX;  // over normal pieces, as sentencepiece starts them
  float max_score = FLT_MIN;
  int32_t unk_id = -1;
  int32_t eos_id = -1;
  int32_t pad_id = 0;
  int32_t extra_ids = 0;
  int32_t model_max_length = 0;

  // The precompiled character map: a trie from text to offsets of NUL-terminated replacements.
  text_internal::DartsTrie charsmap;
  std::string_view replacements;
  std::array<bool, 256> charsmap_starts{};
  // User-defined symbols are never normalized.
  std::vector<std::string> user_defined;  // longest first
  std::array<bool, 256> user_defined_starts{};

  int32_t num_pieces() const { return static_cast<int32_t>(model.pieces.size()); }
  int type(int32_t id) const { return model.pieces[id].type; }

  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view input) const;
  std::string Normalize(std::string_view input) const;
  void Viterbi(std::string_view normalized, std::vector<int32_t>* ids) const;
};

// The replacement of the longest rule that matches at the start of `input`, and how many bytes
// of `input` it replaces (sentencepiece's `Normalizer::NormalizePrefix`).
std::pair<std::string_view, size_t> SentencePieceTokenizer::Impl::NormalizePrefix(
    std::string_view input) const {
  const auto lead = static_cast<unsigned char>(input[0]);
  if (user_defined_starts[lead]) {
    for (const std::string& symbol : user_defined) {
      if (StartsWith(input, symbol)) return {input.substr(0, symbol.size()), symbol.size()};
    }
  }
  if (charsmap_starts[lead]) {
    size_t longest = 0;
    int32_t value = 0;
    charsmap.ForEachPrefix(input, [&](size_t length, int32_t v) {
      if (length > longest) {
        longest = length;
        value = v;
      }
    });
    if (longest > 0 && static_cast<size_t>(value) < replacements.size()) {
      std::string_view replacement = replacements.substr(value);
      replacement = replacement.substr(0, replacement.find('\0'));
      return {replacement, longest};
    }
  }
  const size_t length = std::min<size_t>(text_internal::Utf8Length(lead), input.size());
  return {input.substr(0, length), length};
}

// sentencepiece's `Normalizer::Normalize` (whitespace as prefix).
std::string SentencePieceTokenizer::Impl::Normalize(std::string_view input) const {
  std::string normalized;
  const SentencePieceModel& spec = model;
  if (spec.remove_extra_whitespaces) {
    while (!input.empty()) {
      const auto [replacement, consumed] = NormalizePrefix(input);
      if (replacement != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return normalized;
  normalized.reserve(input.size() * 3 / 2 + 3);
  const std::string_view space = spec.escape_whitespaces ? kSpaceSymbol : " ";
  if (spec.add_dummy_prefix) normalized.append(space);
  bool is_prev_space = spec.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [replacement, consumed] = NormalizePrefix(input);
    while (is_prev_space && StartsWith(replacement, " ")) replacement.remove_prefix(1);
    if (!replacement.empty()) {
      for (const char c : replacement) {
        if (c == ' ' && spec.escape_whitespaces) {
          normalized.append(kSpaceSymbol);
        } else {
          normalized.push_back(c);
        }
      }
      is_prev_space = EndsWith(replacement, " ");
    }
    input.remove_prefix(consumed);
    if (!spec.remove_extra_whitespaces) is_prev_space = false;
  }
  if (spec.remove_extra_whitespaces) {
    while (EndsWith(normalized, space)) normalized.resize(normalized.size() - space.size());
  }
  return normalized;
}

// sentencepiece's `unigram::Model::EncodeOptimized`: the best path ending at each byte, found
// left to right, then read back. Scores are summed in double and kept in float as there, so
// ties break the same way.
void SentencePieceTokenizer::Impl::Viterbi(std::string_view normalized,
                                           std::vector<int32_t>* ids) const {
  struct BestPath {
    int32_t id = -1;
    float score = 0;
    int64_t starts_at = -1;
  };
  const auto size = static_cast<int64_t>(normalized.size());
  const float unk_score = min_score - kUnkPenalty;
  std::vector<BestPath> best(size + 1);
  int64_t starts_at = 0;
  while (starts_at < size) {
    const float score_till_here = best[starts_at].score;
    const int64_t char_length = std::min<int64_t>(
        text_internal::Utf8Length(static_cast<unsigned char>(normalized[starts_at])),
        size - starts_at);
    bool has_single_char_piece = false;
    int32_t node = 0;
    for (int64_t key_pos = starts_at; key_pos < size;) {
      node = trie.Child(node, static_cast<unsigned char>(normalized[key_pos]));
      if (node < 0) break;
      ++key_pos;
      const int32_t id = trie.Value(node);
      if (id < 0 || type(id) == SentencePieceModel::kUnused) continue;
      const int64_t length = key_pos - starts_at;
      const double score = type(id) == SentencePieceModel::kUserDefined
                               ? static_cast<double>(static_cast<size_t>(length) * max_score) - 0.1
                               : model.pieces[id].score;
      const double candidate = score + score_till_here;
      BestPath& target = best[key_pos];
      if (target.starts_at == -1 || candidate > target.score) {
        target.score = static_cast<float>(candidate);
        target.starts_at = starts_at;
        target.id = id;
      }
      if (length == char_length) has_single_char_piece = true;
    }
    if (!has_single_char_piece) {
      BestPath& target = best[starts_at + char_length];
      const double candidate = static_cast<double>(unk_score) + score_till_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target.score = static_cast<float>(candidate);
        target.starts_at = starts_at;
        target.id = unk_id;
      }
    }
    starts_at += char_length;
  }
  const size_t first = ids->size();
  for (int64_t ends_at = size; ends_at > 0; ends_at = best[ends_at].starts_at) {
    ids->push_back(best[ends_at].id);
  }
  std::reverse(ids->begin() + first, ids->end());
  // A run of unknown characters is one unk piece, as `PopulateSentencePieceText` merges it.
  auto end = std::unique(ids->begin() + first, ids->end(), [this](int32_t a, int32_t b) {
    return a == b && type(a) == SentencePieceModel::kUnknown;
  });
  ids->erase(end, ids->end());
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::FromFile(
    const std::string& spiece_model, const std::string& tokenizer_config_json) {
  MODELPOOL_ASSIGN_OR_RETURN(const std::string bytes,
                             text_internal::ReadFileToString(spiece_model));
  MODELPOOL_ASSIGN_OR_RETURN(const text_internal::TokenizerConfig config,
                             text_internal::ReadTokenizerConfig(tokenizer_config_json));
  return FromBytes(bytes, spiece_model, config.extra_ids, config.model_max_length);
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::FromBytes(
    std::string_view bytes, const std::string& name, int32_t extra_ids, int32_t model_max_length) {
  absl::StatusOr<SentencePieceModel> parsed = text_internal::ParseSentencePieceModel(bytes);
  if (!parsed.ok())
    return Invalid(name, "not a SentencePiece model: " + std::string(parsed.status().message()));
  auto impl = std::make_unique<Impl>();
  impl->model = std::move(*parsed);
  SentencePieceModel& model = impl->model;
  if (model.model_type != SentencePieceModel::kUnigram) {
    static constexpr const char* kTypes[] = {"?", "unigram", "BPE", "word", "char"};
    const int t = model.model_type;
    return Invalid(name, std::string("model type ") + (t >= 1 && t <= 4 ? kTypes[t] : "?") +
                             " is not supported (only unigram)");
  }
  if (model.byte_fallback) return Invalid(name, "byte_fallback models are not supported");
  if (model.treat_whitespace_as_suffix) {
    return Invalid(name, "treat_whitespace_as_suffix models are not supported");
  }
  if (model.has_denormalizer) return Invalid(name, "denormalization rules are not supported");
  if (model.pieces.empty()) return Invalid(name, "the model has no pieces");
  if (extra_ids < 0 || model.pieces.size() + extra_ids > (1u << 30)) {
    return Invalid(name, "too many pieces");
  }
  absl::flat_hash_set<absl::string_view> seen;
  std::vector<std::pair<std::string_view, int32_t>> keys;
  for (int32_t id = 0; id < impl->num_pieces(); ++id) {
    const SentencePieceModel::Piece& piece = model.pieces[id];
    if (piece.piece.empty()) return Invalid(name, "piece " + std::to_string(id) + " is empty");
    if (piece.piece.size() >= kMaxPieceBytes) return Invalid(name, "a piece is too long");
    if (piece.piece.find('\0') != std::string::npos) {
      return Invalid(name, "piece " + std::to_string(id) + " holds a NUL character");
    }
    if (!seen.insert(absl::string_view(piece.piece.data(), piece.piece.size())).second) {
      return Invalid(name, "piece " + piece.piece + " is defined twice");
    }
    switch (piece.type) {
      case SentencePieceModel::kNormal:
        impl->min_score = std::min(impl->min_score, piece.score);
        impl->max_score = std::max(impl->max_score, piece.score);
        keys.emplace_back(piece.piece, id);
        break;
      case SentencePieceModel::kUserDefined:
        impl->user_defined.push_back(piece.piece);
        keys.emplace_back(piece.piece, id);
        break;
      case SentencePieceModel::kUnused:
        keys.emplace_back(piece.piece, id);
        break;
      case SentencePieceModel::kUnknown:
        if (impl->unk_id >= 0) return Invalid(name, "the unk piece is defined twice");
        impl->unk_id = id;
        break;
      case SentencePieceModel::kControl:
        if (piece.piece == model.eos_piece) impl->eos_id = id;
        if (piece.piece == model.pad_piece) impl->pad_id = id;
        break;
      default:
        return Invalid(
            name, "piece " + piece.piece + " has unsupported type " + std::to_string(piece.type));
    }
  }
  if (impl->unk_id < 0) return Invalid(name, "the model has no unk piece");
  impl->trie.Build(std::move(keys));
  std::sort(impl->user_defined.begin(), impl->user_defined.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& symbol : impl->user_defined) {
    impl->user_defined_starts[static_cast<unsigned char>(symbol[0])] = true;
  }
  // <trie size: 4 bytes little-endian><darts-clone units><NUL-terminated replacements>
  const std::string_view charsmap = model.precompiled_charsmap;
  if (!charsmap.empty()) {
    if (charsmap.size() <= 4) return Invalid(name, "the normalization rules are broken");
    const auto* p = reinterpret_cast<const unsigned char*>(charsmap.data());
    const uint32_t trie_size =
        p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    if (trie_size > charsmap.size() - 4) {
      return Invalid(name, "the normalization rules are broken");
    }
    impl->charsmap = text_internal::DartsTrie(charsmap.substr(4, trie_size));
    impl->replacements = charsmap.substr(4 + trie_size);
    for (int b = 0; b < 256; ++b) {
      impl->charsmap_starts[b] = impl->charsmap.HasKeyStartingWith(static_cast<unsigned char>(b));
    }
  }
  impl->extra_ids = extra_ids;
  impl->model_max_length = model_max_length;
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(impl)));
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text,
                                                    const EncodeOptions& options,
                                                    bool* truncated) const {
  std::string storage;
  text = text_internal::ValidUtf8(text, &storage);
  std::vector<int32_t> ids;
  const std::string normalized = impl_->Normalize(text);
  ids.reserve(normalized.size() / 3 + 2);
  impl_->Viterbi(normalized, &ids);
  const bool add_eos = options.add_special_tokens && impl_->eos_id >= 0;
  bool cut = false;
  if (options.truncation && options.max_length > 0) {
    const size_t budget = std::max(0, options.max_length - (add_eos ? 1 : 0));
    if (ids.size() > budget) {
      ids.resize(budget);
      cut = true;
    }
  }
  if (add_eos) ids.push_back(impl_->eos_id);
  if (truncated != nullptr) *truncated = cut;
  return ids;
}

// sentencepiece's `SentencePieceProcessor::Decode`, plus the extra ids.
std::string SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids,
                                           bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  const SentencePieceModel& model = impl.model;
  std::string text;
  // Whether a leading U+2581 is still to be dropped: until the text is not empty, or, without
  // remove_extra_whitespaces, until one has been dropped.
  bool is_bos_ws = true;
  bool bos_ws_seen = false;
  for (const int32_t id : ids) {
    if (id < 0 || id >= impl.num_pieces() + impl.extra_ids) continue;
    if (id >= impl.num_pieces()) {
      if (skip_special_tokens) continue;
      text += "<extra_id_" + std::to_string(impl.num_pieces() + impl.extra_ids - 1 - id) + ">";
      continue;
    }
    const int type = impl.type(id);
    if (skip_special_tokens &&
        (type == SentencePieceModel::kControl || type == SentencePieceModel::kUnknown)) {
      continue;
    }
    if (bos_ws_seen || !text.empty()) is_bos_ws = false;
    if (type == SentencePieceModel::kControl) {
      bos_ws_seen = false;
      continue;
    }
    if (type == SentencePieceModel::kUnknown) {
      text += model.unk_surface;
      bos_ws_seen = false;
      continue;
    }
    std::string_view piece = model.pieces[id].piece;
    bool has_bos_ws = false;
    if (is_bos_ws && (model.add_dummy_prefix || model.remove_extra_whitespaces)) {
      has_bos_ws = StartsWith(piece, kSpaceSymbol);
      if (has_bos_ws) piece.remove_prefix(kSpaceSymbol.size());
      if (model.remove_extra_whitespaces) has_bos_ws = false;
    }
    for (size_t at = 0; at < piece.size();) {
      if (piece.compare(at, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
        text.push_back(' ');
        at += kSpaceSymbol.size();
      } else {
        text.push_back(piece[at++]);
      }
    }
    bos_ws_seen = has_bos_ws;
  }
  return text;
}

int32_t SentencePieceTokenizer::vocab_size() const {
  return impl_->num_pieces() + impl_->extra_ids;
}
int32_t SentencePieceTokenizer::pad_id() const { return impl_->pad_id; }
int32_t SentencePieceTokenizer::model_max_length() const { return impl_->model_max_length; }
int32_t SentencePieceTokenizer::eos_id() const { return impl_->eos_id; }
int32_t SentencePieceTokenizer::unk_id() const { return impl_->unk_id; }

std::string SentencePieceTokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (id >= impl_->num_pieces()) {
    return "<extra_id_" + std::to_string(impl_->num_pieces() + impl_->extra_ids - 1 - id) + ">";
  }
  return impl_->model.pieces[id].piece;
}

}  // namespace modelpool
