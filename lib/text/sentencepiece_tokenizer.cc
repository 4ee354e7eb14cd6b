#include "modelpool/text/sentencepiece_tokenizer.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <limits>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/text/darts_internal.h"
#include "lib/text/sentencepiece_model_internal.h"
#include "lib/text/tokenizer_files_internal.h"
#include "lib/text/unigram_lattice_internal.h"
#include "lib/text/utf8_internal.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

using text_internal::kSpaceSymbol;
using text_internal::SentencePieceModel;
using BestPath = text_internal::BestPath<float>;
using PieceTrie = text_internal::PieceTrie<float>;

// sentencepiece's `kUnkPenalty`: an unknown character scores this much below the worst piece.
constexpr float kUnkPenalty = 10.0f;
// sentencepiece refuses pieces this long.
constexpr size_t kMaxPieceBytes = 8000;
// How far the Viterbi sums run before they start again from 0 at a word start; see Note
// [Viterbi arithmetic: sentencepiece 0.2 versus 0.1.97].
constexpr int64_t kRestartBytes = 4096;

absl::Status Invalid(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(name + ": " + what);
}

// What one thread reuses from text to text, so that encoding allocates only the ids it returns.
struct Scratch {
  std::string normalized;
  std::vector<BestPath> best;
};
// Buffers grown past this by a long text are given back after it.
constexpr size_t kMaxScratchBytes = size_t{1} << 20;

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
  // No piece holds U+2581 after its first byte, so no piece spans a word start and the Viterbi
  // sums may start again there.
  bool restartable = true;

  // The precompiled character map: a trie from text to offsets of NUL-terminated replacements.
  text_internal::DartsTrie charsmap;
  std::string_view replacements;
  std::array<bool, 256> charsmap_starts{};
  // User-defined symbols are never normalized.
  std::vector<std::string> user_defined;  // longest first
  std::array<bool, 256> user_defined_starts{};

  // The ASCII fast path of the normalizer, read from the model's rules (see
  // `InitAsciiRules`). `ascii_replacement[b]` is what `NormalizePrefix` gives for ASCII byte `b`
  // followed by ASCII or by nothing, where `ascii_known[b]`; `ascii_plain[b]` says that it is
  // `b` itself and not a space.
  std::array<bool, 256> ascii_known{};
  std::array<bool, 256> ascii_plain{};
  std::array<std::string_view, 128> ascii_replacement;
  std::array<char, 128> ascii_bytes{};  // what an unchanged byte's replacement points into

  int32_t num_pieces() const { return static_cast<int32_t>(model.pieces.size()); }
  int type(int32_t id) const { return model.pieces[id].type; }

  void InitAsciiRules();
  std::pair<std::string_view, size_t> MatchPrefix(std::string_view input) const;
  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view input) const {
    const auto lead = static_cast<unsigned char>(input[0]);
    if (ascii_known[lead] && (input.size() == 1 || static_cast<unsigned char>(input[1]) < 0x80)) {
      return {ascii_replacement[lead], 1};
    }
    return MatchPrefix(input);
  }
  void Normalize(std::string_view input, std::string* normalized) const;
  void Viterbi(const std::string& normalized, std::vector<BestPath>* best,
               std::vector<int32_t>* ids) const;
};

// The replacement of the longest rule that matches at the start of `input`, and how many bytes
// of `input` it replaces (sentencepiece's `Normalizer::NormalizePrefix`).
std::pair<std::string_view, size_t> SentencePieceTokenizer::Impl::MatchPrefix(
    std::string_view input) const {
  const auto lead = static_cast<unsigned char>(input[0]);
  if (user_defined_starts[lead]) {
    for (const std::string& symbol : user_defined) {
      if (input.starts_with(symbol)) return {input.substr(0, symbol.size()), symbol.size()};
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

// An ASCII byte whose rules all end with it, or continue only with non-ASCII bytes, normalizes
// the same way before any ASCII byte: `NormalizePrefix` then answers from a table. That holds
// for nearly every byte of the usual models (nmt_nfkc's longer rules after ASCII letters start
// with combining marks), but it is read from the rules here, not assumed.
void SentencePieceTokenizer::Impl::InitAsciiRules() {
  for (int b = 0; b < 0x80; ++b) {
    ascii_bytes[b] = static_cast<char>(b);
    if (user_defined_starts[b]) continue;
    bool known = true;
    for (int next = 0; next < 0x80 && known; ++next) {
      const char prefix[2] = {static_cast<char>(b), static_cast<char>(next)};
      known = !charsmap.HasKeyWithPrefix(std::string_view(prefix, 2));
    }
    if (!known) continue;
    const std::string_view byte(&ascii_bytes[b], 1);
    ascii_known[b] = true;
    ascii_replacement[b] = MatchPrefix(byte).first;
    ascii_plain[b] = b != ' ' && ascii_replacement[b] == byte;
  }
}

// sentencepiece's `Normalizer::Normalize` (whitespace as prefix), into `*normalized`.
void SentencePieceTokenizer::Impl::Normalize(std::string_view input,
                                             std::string* normalized) const {
  normalized->clear();
  const SentencePieceModel& spec = model;
  if (spec.remove_extra_whitespaces) {
    while (!input.empty()) {
      const auto [replacement, consumed] = NormalizePrefix(input);
      if (replacement != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return;
  normalized->reserve(input.size() * 3 / 2 + 3);
  const std::string_view space = spec.escape_whitespaces ? kSpaceSymbol : " ";
  if (spec.add_dummy_prefix) normalized->append(space);
  bool is_prev_space = spec.remove_extra_whitespaces;
  while (!input.empty()) {
    // ASCII bytes that stay as they are go over in runs. Before a non-ASCII byte the last one
    // may start a longer rule, so it takes the general way.
    size_t run = 0;
    while (run < input.size() && ascii_plain[static_cast<unsigned char>(input[run])]) ++run;
    if (run < input.size() && static_cast<unsigned char>(input[run]) >= 0x80 && run > 0) --run;
    if (run > 0) {
      normalized->append(input.data(), run);
      input.remove_prefix(run);
      is_prev_space = false;
      continue;
    }
    auto [replacement, consumed] = NormalizePrefix(input);
    while (is_prev_space && replacement.starts_with(' ')) replacement.remove_prefix(1);
    if (!replacement.empty()) {
      for (const char c : replacement) {
        if (c == ' ' && spec.escape_whitespaces) {
          normalized->append(kSpaceSymbol);
        } else {
          normalized->push_back(c);
        }
      }
      is_prev_space = replacement.ends_with(' ');
    }
    input.remove_prefix(consumed);
    if (!spec.remove_extra_whitespaces) is_prev_space = false;
  }
  if (spec.remove_extra_whitespaces) {
    while (normalized->ends_with(space)) normalized->erase(normalized->size() - space.size());
  }
}

// Note [Viterbi arithmetic: sentencepiece 0.2 versus 0.1.97]
// `unigram::Model::EncodeOptimized` keeps the best path ending at each byte, found left to
// right, then read back; a later candidate replaces the kept one only when it scores strictly
// higher, so in a tie the path found first stays. The arithmetic decides which paths tie, and
// the two library versions we compare with differ in it (the fixtures of
// tools/make_tokenizer_fixtures.py, made with sentencepiece 0.2.2, against Debian's 0.1.97):
//
//  * Comparison. 0.1.97 adds each piece score to the float kept at its start in double
//    (`length * max_score_ - 0.1` for user-defined symbols makes its `score` a double) and
//    compares that unrounded sum with the kept float, so a sum that rounds to the kept score
//    but lies above it wins. 0.2.2 picks as if both sides were float: of "▁xxxvi" the
//    segmentations "x xx" and "xx x" tie exactly, 0.2.2 keeps the first found, "x xx", and
//    0.1.97 the other (benchmark documents 27 and 143 with t5-small). We add and compare in
//    float.
//  * Long inputs. Both keep the scores in float, whose step grows with the magnitude: summed
//    over 1 MiB of text (about -6e6) it is 0.5, and 0.1.97 then takes "▁a" where "▁" "a"
//    scores higher (1565 fewer ids than 0.2.2 on the trained model's 1 MiB text). 0.2.2 does
//    not lose those decisions, while it does break short ties as float arithmetic from the
//    start of the text does ("x" x 99 + U+0301 with t5-small: summing in double instead moves
//    the single "x"). We keep float arithmetic and start the sums again from 0 at the first
//    word start (a U+2581) at least `kRestartBytes` after the last start, where no piece can
//    span: then texts up to that size are summed exactly as 0.2.2 sums them, and longer ones
//    keep float's precision of a few thousand bytes. This restart is our rule, not one read
//    in sentencepiece: 0.2.2's own way to keep long sums precise was not found in its source,
//    so which of the equal-scoring segmentations of a tie it takes in a long text may differ
//    from ours (t5-small's 1 MiB text: same count, first and last ids, other hash; its only
//    ties there are runs of 101 "x", where the single "x" may sit anywhere).
//
// tests/text/sentencepiece_differential_test.cc checks against 0.1.97 that a segmentation that
// differs from the library's scores at least as high under the model (a tie, or a decision
// 0.1.97's arithmetic lost); tests/data/text/README.md says the same.
void SentencePieceTokenizer::Impl::Viterbi(const std::string& normalized,
                                           std::vector<BestPath>* best_paths,
                                           std::vector<int32_t>* ids) const {
  const auto size = static_cast<int64_t>(normalized.size());
  text_internal::ViterbiForward<float>(trie, normalized, min_score - kUnkPenalty, unk_id,
                                       restartable ? kRestartBytes : 0, best_paths);
  const BestPath* const best = best_paths->data();
  // Read back, with room for </s>. A run of unknown characters is one unk piece, as
  // `PopulateSentencePieceText` merges it.
  size_t count = 1;
  for (int64_t ends_at = size; ends_at > 0; ends_at = best[ends_at].starts_at) ++count;
  ids->reserve(ids->size() + count);
  const size_t first = ids->size();
  for (int64_t ends_at = size; ends_at > 0; ends_at = best[ends_at].starts_at) {
    const int32_t id = best[ends_at].id;
    if (id != unk_id || ids->size() == first || ids->back() != unk_id) ids->push_back(id);
  }
  std::reverse(ids->begin() + first, ids->end());
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
  std::vector<PieceTrie::Key> keys;
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
    if (piece.piece.find(kSpaceSymbol, 1) != std::string::npos) impl->restartable = false;
    switch (piece.type) {
      case SentencePieceModel::kNormal:
        impl->min_score = std::min(impl->min_score, piece.score);
        impl->max_score = std::max(impl->max_score, piece.score);
        keys.push_back({piece.piece, id, piece.score});
        break;
      case SentencePieceModel::kUserDefined:
        impl->user_defined.push_back(piece.piece);
        keys.push_back({piece.piece, id, 0});  // scored below, with max_score known
        break;
      case SentencePieceModel::kUnused:
        break;  // never in a segmentation
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
  for (PieceTrie::Key& key : keys) {
    // sentencepiece's bonus that makes a user-defined symbol win, in its arithmetic.
    if (model.pieces[key.id].type == SentencePieceModel::kUserDefined) {
      key.score = static_cast<float>(static_cast<double>(key.bytes.size() * impl->max_score) - 0.1);
    }
  }
  if (!impl->trie.Build(std::move(keys))) return Invalid(name, "too many pieces");
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
      const char byte = static_cast<char>(b);
      impl->charsmap_starts[b] = impl->charsmap.HasKeyWithPrefix(std::string_view(&byte, 1));
    }
  }
  impl->InitAsciiRules();
  impl->extra_ids = extra_ids;
  impl->model_max_length = model_max_length;
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(impl)));
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text,
                                                    const EncodeOptions& options,
                                                    bool* truncated) const {
  std::string storage;
  text = text_internal::ValidUtf8(text, &storage);
  thread_local Scratch scratch;
  impl_->Normalize(text, &scratch.normalized);
  std::vector<int32_t> ids;
  impl_->Viterbi(scratch.normalized, &scratch.best, &ids);
  if (scratch.best.capacity() * sizeof(BestPath) > kMaxScratchBytes) scratch = Scratch();
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
      has_bos_ws = piece.starts_with(kSpaceSymbol);
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
