// tokenize: the ids of texts, as a model would get them.
//
//   modelpool-tokenize --tokenizer PATH|org/name [--max-length N] [--no-special-tokens] --json-in
//   texts.json
//
// PATH is a model folder (tokenizer.json, spiece.model, vocab.json + merges.txt or vocab.txt)
// or one such file; org/name is a Hugging Face id in the local cache. texts.json is a JSON
// array of strings. Prints a JSON array with the ids of each text. Exit status 0 on success,
// 1 on any error (bad arguments included), with a message on stderr.

#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "examples/common/command_line.h"
#include "examples/common/input_files.h"
#include "modelpool/base/model_folder.h"
#include "modelpool/text/tokenizer.h"

ABSL_FLAG(std::string, tokenizer, "",
          "a model folder, a tokenizer file, or a Hugging Face id (org/name[@revision]) in the "
          "local cache");
ABSL_FLAG(std::string, json_in, "", "a JSON array of strings");
ABSL_FLAG(int64_t, max_length, 0, "cut every text to this many tokens; 0 for no limit");
ABSL_FLAG(bool, no_special_tokens, false, "leave out [CLS], [SEP], </s> and the like");

namespace {

constexpr char kUsage[] =
    "modelpool-tokenize --tokenizer PATH|org/name [--max-length N] [--no-special-tokens] --json-in "
    "FILE";

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv, kUsage);
  const std::string tokenizer_flag = absl::GetFlag(FLAGS_tokenizer);
  const std::string json_in = absl::GetFlag(FLAGS_json_in);
  if (tokenizer_flag.empty()) modelpool::cli::Fail("--tokenizer is needed");
  if (json_in.empty()) modelpool::cli::Fail("--json-in is needed");
  modelpool::EncodeOptions options;
  options.max_length = static_cast<int>(modelpool::cli::InRange(FLAGS_max_length, 0, 1'000'000));
  options.add_special_tokens = !absl::GetFlag(FLAGS_no_special_tokens);

  absl::StatusOr<modelpool::ModelFolder> folder = modelpool::FindModelFolder(tokenizer_flag);
  if (!folder.ok()) modelpool::cli::Fail(folder.status());
  auto tokenizer = modelpool::LoadTokenizer(folder->path);
  if (!tokenizer.ok()) modelpool::cli::Fail(modelpool::NameModelIn(tokenizer.status(), *folder));
  absl::StatusOr<std::vector<std::string>> texts = modelpool::cli::ReadTexts(json_in);
  if (!texts.ok()) modelpool::cli::Fail(texts.status());
  const modelpool::EncodedBatch batch = (*tokenizer)->EncodeBatch(*texts, options);
  fmt::print("{}\n", nlohmann::json(batch.ids).dump());
  modelpool::cli::FinishStdout();
  return 0;
}
