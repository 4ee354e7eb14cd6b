#include "modelpool/text/tokenizer.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "modelpool/text/bpe_tokenizer.h"
#include "modelpool/text/unigram_tokenizer.h"
#include "modelpool/text/wordpiece_tokenizer.h"
#include "tests/testing/temp_dir.h"
#include "tests/text/reference_fixtures.h"

namespace modelpool {
namespace {

using testing::TextDataPath;

TEST_CASE("LoadTokenizer picks the tokenizer of a model folder or file") {
  auto t5 = LoadTokenizer(TextDataPath("t5-small"));
  REQUIRE(t5.ok());
  CHECK((*t5)->vocab_size() == 32100);  // with tokenizer_config.json's extra ids
  auto minilm = LoadTokenizer(TextDataPath("all-MiniLM-L6-v2"));
  REQUIRE(minilm.ok());
  CHECK((*minilm)->model_max_length() == 256);
  auto vocab = LoadTokenizer(TextDataPath("bench_vocab.txt"));
  REQUIRE(vocab.ok());
  CHECK((*vocab)->vocab_size() == 30522);
  // tokenizer.json chosen by its model.type.
  auto roberta = LoadTokenizer(TextDataPath("bpe"));
  REQUIRE(roberta.ok());
  CHECK(dynamic_cast<BpeTokenizer*>(roberta->get()) != nullptr);
  CHECK((*roberta)->model_max_length() == 512);
  auto unigram = LoadTokenizer(TextDataPath("unigram/tokenizer.json"));
  REQUIRE(unigram.ok());
  CHECK(dynamic_cast<UnigramTokenizer*>(unigram->get()) != nullptr);
  CHECK(dynamic_cast<UnigramTokenizer*>(t5->get()) != nullptr);
  CHECK(dynamic_cast<WordPieceTokenizer*>(minilm->get()) != nullptr);
  // vocab.json and merges.txt.
  auto merges = LoadTokenizer(TextDataPath("bpe/merges.txt"));
  REQUIRE(merges.ok());
  CHECK((*merges)->Encode("Hello <mask>!", {}) == (*roberta)->Encode("Hello <mask>!", {}));
  auto spiece = LoadTokenizer(TextDataPath("t5-small/spiece.model"));
  REQUIRE(spiece.ok());
  CHECK((*spiece)->vocab_size() == 32100);  // the folder's tokenizer_config.json applies too
}

TEST_CASE("LoadTokenizer says what is missing") {
  auto missing = LoadTokenizer("/nonexistent/model");
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  const auto empty = testing::TempDir("empty_model");
  auto nothing = LoadTokenizer(empty.string());
  CHECK(nothing.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(nothing.status().message()).find("spiece.model") != std::string::npos);
  auto wrong_kind = LoadTokenizer(TextDataPath("corpus.json"));
  CHECK(wrong_kind.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(wrong_kind.status().message()).find("model.type") != std::string::npos);
  const auto dir = testing::TempDir("unknown_model_type");
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "WordLevel", "vocab": {}}})";
  auto unknown = LoadTokenizer(dir.string());
  CHECK(unknown.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(unknown.status().message()).find("tokenizer.json: model.type `WordLevel`") !=
        std::string::npos);
}

TEST_CASE("EncodeBatch gives Encode's ids in input order and counts truncations") {
  auto tokenizer = LoadTokenizer(TextDataPath("all-MiniLM-L6-v2"));
  REQUIRE(tokenizer.ok());
  const auto corpus = testing::LoadFixture("corpus.json");
  REQUIRE(corpus.has_value());
  std::vector<std::string> texts;
  for (int round = 0; round < 5; ++round) {
    for (const auto& text : corpus->at("bench")) texts.push_back(text.get<std::string>());
  }
  const EncodeOptions options{.max_length = 64};
  const EncodedBatch batch = (*tokenizer)->EncodeBatch(texts, options);
  REQUIRE(batch.ids.size() == texts.size());
  int64_t truncated = 0, tokens = 0, longest = 0;
  std::vector<int64_t> truncated_rows;
  bool same = true;
  for (size_t i = 0; i < texts.size(); ++i) {
    bool cut = false;
    same = same && batch.ids[i] == (*tokenizer)->Encode(texts[i], options, &cut);
    truncated += cut;
    if (cut) truncated_rows.push_back(static_cast<int64_t>(i));
    tokens += batch.ids[i].size();
    longest = std::max<int64_t>(longest, batch.ids[i].size());
  }
  CHECK(same);
  CHECK(batch.num_truncated == truncated);
  CHECK(batch.truncated_rows == truncated_rows);
  CHECK(truncated > 0);
  CHECK(batch.num_tokens() == tokens);
  CHECK(batch.max_length() == longest);
  CHECK(longest == 64);
}

}  // namespace
}  // namespace modelpool
