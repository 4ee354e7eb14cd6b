#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include "absl/strings/string_view.h"
#include "lib/text/bpe_model_internal.h"
#include "lib/text/byte_level_internal.h"

namespace modelpool::text_internal {
namespace {

// As the reference's cache: words this long or longer are not remembered.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCachedWords = 10000;
// A thread remembers words for this many models at a time, the most recently added ones.
constexpr size_t kMaxCachesPerThread = 4;

struct WordCache {
  uint64_t model = 0;
  absl::flat_hash_map<std::string, std::vector<int32_t>> words;
};

// The calling thread's cache for `model`: a thread keeps its own caches, so encoding never
// waits on a lock. Model keys are never reused, so a cache outliving its model is only dead
// weight until it is replaced.
WordCache& ThreadCacheFor(uint64_t model) {
  thread_local std::vector<std::unique_ptr<WordCache>> caches;
  for (const auto& cache : caches) {
    if (cache->model == model) return *cache;
  }
  if (caches.size() >= kMaxCachesPerThread) caches.erase(caches.begin());
  caches.push_back(std::make_unique<WordCache>());
  caches.back()->model = model;
  return *caches.back();
}

uint64_t NextModelKey() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // For a min-heap on (rank, pos) through std::push_heap, which keeps the largest on top.
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

BpeModel::BpeModel() : cache_key_(NextModelKey()) {}

absl::Status BpeModel::Build(absl::flat_hash_map<std::string, int32_t> vocab,
                             const std::vector<std::pair<std::string, std::string>>& merges,
                             const Options& options) {
  vocab_ = std::move(vocab);
  options_ = options;
  int32_t size = 0;
  for (const auto& [token, id] : vocab_) size = std::max(size, id + 1);
  tokens_.assign(size, "");
  has_token_.assign(size, false);
  for (const auto& [token, id] : vocab_) {
    tokens_[id] = token;
    has_token_[id] = true;
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t a_id = IdOf(a);
    const int32_t b_id = IdOf(b);
    const int32_t new_id = IdOf(a + b);
    for (const auto& [token, id] : {std::pair{&a, a_id}, {&b, b_id}}) {
      if (id < 0) {
        return absl::InvalidArgumentError("merge " + std::to_string(rank + 1) + " (" + a + " " + b +
                                          ") names " + *token + ", which is not in the vocabulary");
      }
    }
    if (new_id < 0) {
      return absl::InvalidArgumentError("merge " + std::to_string(rank + 1) + " (" + a + " " + b +
                                        ") makes " + a + b + ", which is not in the vocabulary");
    }
    // A repeated pair keeps its last rank, as the reference's map does.
    merges_.insert_or_assign(PairKey(a_id, b_id), MergeRank{static_cast<int32_t>(rank), new_id});
  }
  const std::array<std::string, 256>& chars = ByteLevelChars();
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = IdOf(chars[b]);
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    fallback_ids_[b] = IdOf(name);
  }
  if (!options_.unk_token.empty()) {
    unk_id_ = IdOf(options_.unk_token);
    if (unk_id_ < 0) {
      return absl::InvalidArgumentError("the unk token " + options_.unk_token +
                                        " is not in the vocabulary");
    }
  }
  return absl::OkStatus();
}

const std::string* BpeModel::TokenOf(int32_t id) const {
  if (id < 0 || id >= size() || !has_token_[id]) return nullptr;
  return &tokens_[id];
}

int32_t BpeModel::IdOf(std::string_view token) const {
  const auto it = vocab_.find(absl::string_view(token.data(), token.size()));
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::Encode(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    std::string mapped;
    for (const char c : word) mapped += ByteLevelChars()[static_cast<unsigned char>(c)];
    if (const int32_t id = IdOf(mapped); id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  if (word.size() >= kMaxCachedWordBytes) {
    MergeWord(word, ids);
    return;
  }
  WordCache& cache = ThreadCacheFor(cache_key_);
  if (const auto it = cache.words.find(absl::string_view(word.data(), word.size()));
      it != cache.words.end()) {
    ids->insert(ids->end(), it->second.begin(), it->second.end());
    return;
  }
  const size_t first = ids->size();
  MergeWord(word, ids);
  if (cache.words.size() < kMaxCachedWords) {
    cache.words.emplace(word, std::vector<int32_t>(ids->begin() + first, ids->end()));
  }
}

// The reference's `BPE::merge_word` and `Word::merge_all`.
void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* ids) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  const auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, true});
  };
  int32_t pending_unk = -1;  // an unk token not added yet, to fuse with the next one
  for (const char c : word) {
    const auto b = static_cast<unsigned char>(c);
    if (byte_ids_[b] >= 0) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(byte_ids_[b]);
      continue;
    }
    if (options_.byte_fallback) {
      // The bytes of the byte-level character, each as <0xXX>, when all of them exist.
      const std::string& mapped = ByteLevelChars()[b];
      const bool all = std::all_of(mapped.begin(), mapped.end(), [&](char m) {
        return fallback_ids_[static_cast<unsigned char>(m)] >= 0;
      });
      if (all) {
        for (const char m : mapped) add(fallback_ids_[static_cast<unsigned char>(m)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !options_.fuse_unk) add(pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  const auto candidate_at = [&](int32_t pos) {
    const Symbol& left = symbols[pos];
    if (left.next < 0) return;
    const auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, it->second.new_id});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) candidate_at(pos);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // A candidate whose pair has changed since it was queued is stale.
    const auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) candidate_at(left.prev);
    candidate_at(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids->push_back(s.id);
  }
}

}  // namespace modelpool::text_internal
