// How many tokens per second do our tokenizers make, on one thread and on all cores, next to
// the Hugging Face `tokenizers` library and `sentencepiece`?
//
//   tokenizer_bench --corpus corpus.txt --vocab vocab.txt --spiece spiece.model
//                   [--bpe tokenizer.json] [--repeat 3] [--peer "python3
//                   benchmarks/peers/hf_tokenize.py ..."]
//
// corpus.txt and vocab.txt are what make_corpus.py writes (one document per line). Prints one
// JSON line per measurement (the best of --repeat runs) and, with --peer, one line per ratio
// ours/theirs from the same run.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "benchmarks/corpus.h"
#include "benchmarks/peer.h"
#include "modelpool/text/bpe_tokenizer.h"
#include "modelpool/text/sentencepiece_tokenizer.h"
#include "modelpool/text/wordpiece_tokenizer.h"

ABSL_FLAG(std::string, corpus, "", "the documents, one a line");
ABSL_FLAG(std::string, vocab, "", "a WordPiece vocab.txt");
ABSL_FLAG(std::string, spiece, "", "a SentencePiece spiece.model");
ABSL_FLAG(std::string, bpe, "", "a byte-level BPE tokenizer.json, measured too when given");
ABSL_FLAG(int64_t, repeat, 3, "runs of each measurement; the best is reported");
ABSL_FLAG(std::string, peer, "", "a command whose JSON lines give the peer's figures");

namespace {

using Clock = std::chrono::steady_clock;

struct Measurement {
  int64_t tokens = 0;
  double seconds = 1e30;
};

// The best of `repeat` runs of `encode`, which returns the number of tokens it made.
template <typename Encode>
Measurement Best(int repeat, const Encode& encode) {
  Measurement best;
  for (int r = 0; r < repeat; ++r) {
    const auto start = Clock::now();
    const int64_t tokens = encode();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (seconds < best.seconds) best = {tokens, seconds};
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv,
                                   "tokenizer_bench --corpus FILE --vocab FILE --spiece FILE "
                                   "[--bpe tokenizer.json] [--repeat N] [--peer CMD]");
  const std::vector<std::string> texts =
      modelpool::bench::ReadCorpus(modelpool::cli::Required(FLAGS_corpus));
  const std::string vocab_path = modelpool::cli::Required(FLAGS_vocab);
  const std::string spiece_path = modelpool::cli::Required(FLAGS_spiece);
  const std::string bpe_path = absl::GetFlag(FLAGS_bpe);
  const int repeat = static_cast<int>(modelpool::cli::InRange(FLAGS_repeat, 1, 1000));
  const std::string peer = absl::GetFlag(FLAGS_peer);
  auto wordpiece = modelpool::WordPieceTokenizer::FromVocabTxt(vocab_path);
  if (!wordpiece.ok()) modelpool::cli::Fail(wordpiece.status());
  auto sentencepiece = modelpool::SentencePieceTokenizer::FromFile(spiece_path);
  if (!sentencepiece.ok()) modelpool::cli::Fail(sentencepiece.status());
  std::vector<std::pair<const char*, const modelpool::Tokenizer*>> tokenizers = {
      {"wordpiece", wordpiece->get()}, {"sentencepiece", sentencepiece->get()}};
  std::unique_ptr<modelpool::BpeTokenizer> bpe;
  if (!bpe_path.empty()) {
    auto loaded = modelpool::BpeTokenizer::FromTokenizerJson(bpe_path);
    if (!loaded.ok()) modelpool::cli::Fail(loaded.status());
    bpe = std::move(*loaded);
    tokenizers.push_back({"bpe", bpe.get()});
  }

  // Whole documents, as the peers encode them: no truncation.
  const modelpool::EncodeOptions options{.max_length = 0, .truncation = false};
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<nlohmann::json> ours;
  for (const auto& [name, tokenizer] : tokenizers) {
    const Measurement single = Best(repeat, [&, tokenizer = tokenizer] {
      int64_t tokens = 0;
      for (const std::string& text : texts) tokens += tokenizer->Encode(text, options).size();
      return tokens;
    });
    const Measurement all = Best(repeat, [&, tokenizer = tokenizer] {
      return tokenizer->EncodeBatch(texts, options).num_tokens();
    });
    for (const auto& [threads, m] :
         {std::pair<nlohmann::json, Measurement>{1, single}, {"all", all}}) {
      nlohmann::json line = {
          {"bench", "tokenizer"}, {"impl", "modelpool"},  {"tokenizer", name},
          {"threads", threads},   {"cores", cores},       {"texts", texts.size()},
          {"tokens", m.tokens},   {"seconds", m.seconds}, {"tokens_per_s", m.tokens / m.seconds}};
      std::printf("%s\n", line.dump().c_str());
      std::fflush(stdout);
      ours.push_back(line);
    }
  }
  if (peer.empty()) return 0;
  const modelpool::bench::PeerOutput theirs = modelpool::bench::RunPeer(peer);
  modelpool::bench::CheckPeerSucceeded(theirs, peer);
  for (const nlohmann::json& line : ours) {
    const nlohmann::json* other = modelpool::bench::FindLine(
        theirs, {{"tokenizer", line["tokenizer"]}, {"threads", line["threads"]}});
    if (other == nullptr) continue;
    std::printf("%s\n", nlohmann::json{{"bench", "tokenizer"},
                                       {"ratio", "modelpool/peer"},
                                       {"peer", (*other).value("impl", "peer")},
                                       {"tokenizer", line["tokenizer"]},
                                       {"threads", line["threads"]},
                                       {"tokens_equal", (*other)["tokens"] == line["tokens"]},
                                       {"tokens_per_s", line["tokens_per_s"].get<double>() /
                                                            (*other)["tokens_per_s"].get<double>()}}
                            .dump()
                            .c_str());
  }
  return 0;
}
