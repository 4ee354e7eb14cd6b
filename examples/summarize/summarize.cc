// modelpool-summarize: summaries of documents with an encoder-decoder model (T5, BART), on one
// device. Generation flags that are not given take the model folder's defaults
// (generation_config.json, else config.json), as transformers does.
//
//   modelpool-summarize --model /models/flan-t5-large --input docs.txt   # one document a line
//   modelpool-summarize --model google/flan-t5-large --json-in docs.json --json-out out.json
//   modelpool-summarize --json-in-ids ids.json                           # token ids in, ids out
//
// --model is a folder or a Hugging Face id in the local cache. Without it, a tiny
// random-weight model bundled with the sources runs: the output is nonsense, but every step is
// real. Line i of the output answers line (or element) i of the input; blank lines are
// documents too. Exit status 0 on success, 1 on any error (bad arguments included).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "examples/common/command_line.h"
#include "examples/common/input_files.h"
#include "examples/common/output_file.h"
#include "modelpool/managers/summarization_model_manager.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "",
          "a model folder or a Hugging Face id (org/name[@revision]) in the local cache; the "
          "bundled tiny model when empty");
ABSL_FLAG(std::string, input, "", "a text file, one document per line");
ABSL_FLAG(std::string, json_in, "", "a JSON array of strings");
ABSL_FLAG(std::string, json_in_ids, "", "a JSON array of arrays of token ids");
ABSL_FLAG(std::string, json_out, "", "also write the outputs to this file, as a JSON array");
ABSL_FLAG(int64_t, num_beams, 0,
          "1 for greedy search, more for beam search; 0 for the model folder's default");
ABSL_FLAG(int64_t, max_new_tokens, 0,
          "the most tokens generated per document; 0 for the model folder's default");
ABSL_FLAG(int64_t, min_new_tokens, -1,
          "the fewest tokens generated per document; -1 for the model folder's default");
ABSL_FLAG(int64_t, no_repeat_ngram_size, -1,
          "no n-gram of this size repeats (0: off); -1 for the model folder's default");

namespace {

using Json = nlohmann::json;

constexpr char kUsage[] =
    "modelpool-summarize [--model DIR|org/name] (--input DOCS_TXT | --json-in DOCS_JSON |\n"
    "                    --json-in-ids IDS_JSON) [--num-beams N] [--max-new-tokens N]\n"
    "                    [--min-new-tokens N] [--no-repeat-ngram-size N] [--json-out OUT_JSON]";

// Bounds that keep every count an int; the model's own limits are checked when it loads.
constexpr int64_t kMaxBeams = 1024;
constexpr int64_t kMaxNewTokens = int64_t{1} << 20;

// Unset generation values take the folder's defaults.
struct Flags {
  std::string model;
  std::string input, json_in, json_in_ids, json_out;
  std::optional<int> num_beams;
  std::optional<int> max_new_tokens;
  std::optional<int> min_new_tokens;
  std::optional<int> no_repeat_ngram_size;
};

Flags ReadFlags() {
  Flags flags;
  flags.model = absl::GetFlag(FLAGS_model);
  flags.input = absl::GetFlag(FLAGS_input);
  flags.json_in = absl::GetFlag(FLAGS_json_in);
  flags.json_in_ids = absl::GetFlag(FLAGS_json_in_ids);
  flags.json_out = absl::GetFlag(FLAGS_json_out);
  const int inputs = !flags.input.empty() + !flags.json_in.empty() + !flags.json_in_ids.empty();
  if (inputs != 1) modelpool::cli::Fail("give exactly one of --input, --json-in and --json-in-ids");
  if (absl::GetFlag(FLAGS_num_beams) != 0) {
    flags.num_beams = static_cast<int>(modelpool::cli::InRange(FLAGS_num_beams, 1, kMaxBeams));
  }
  if (absl::GetFlag(FLAGS_max_new_tokens) != 0) {
    flags.max_new_tokens =
        static_cast<int>(modelpool::cli::InRange(FLAGS_max_new_tokens, 1, kMaxNewTokens));
  }
  if (absl::GetFlag(FLAGS_min_new_tokens) != -1) {
    flags.min_new_tokens =
        static_cast<int>(modelpool::cli::InRange(FLAGS_min_new_tokens, 0, kMaxNewTokens));
    if (flags.max_new_tokens.has_value() && *flags.min_new_tokens > *flags.max_new_tokens) {
      modelpool::cli::Fail(absl::StrCat("--min_new_tokens ", *flags.min_new_tokens,
                                        " is above --max_new_tokens ", *flags.max_new_tokens));
    }
  }
  if (absl::GetFlag(FLAGS_no_repeat_ngram_size) != -1) {
    flags.no_repeat_ngram_size =
        static_cast<int>(modelpool::cli::InRange(FLAGS_no_repeat_ngram_size, 0, kMaxNewTokens));
  }
  if (flags.model.empty()) {
    flags.model = MODELPOOL_BUNDLED_T5_MODEL;
    std::error_code error;
    if (!std::filesystem::exists(flags.model, error)) {
      modelpool::cli::Fail("--model is needed: the bundled model is not at " + flags.model);
    }
    if (!flags.min_new_tokens.has_value()) {
      // Its random weights end every text at once, or repeat one token; a few different tokens
      // show that each step runs.
      if (!flags.max_new_tokens.has_value()) flags.max_new_tokens = 128;
      flags.min_new_tokens = std::min(8, *flags.max_new_tokens);
      if (!flags.no_repeat_ngram_size.has_value()) flags.no_repeat_ngram_size = 2;
      std::cerr << "summarize: no --model: the bundled model has random weights; its summaries "
                   "are nonsense of at least "
                << *flags.min_new_tokens << " tokens\n";
    }
  }
  return flags;
}

int Run(const Flags& flags) {
  std::vector<std::string> docs;
  std::vector<std::vector<int32_t>> ids;
  if (!flags.input.empty()) {
    absl::StatusOr<std::vector<std::string>> lines = modelpool::cli::ReadLines(flags.input);
    if (!lines.ok()) modelpool::cli::Fail(lines.status());
    docs = *std::move(lines);
  } else if (!flags.json_in.empty()) {
    absl::StatusOr<std::vector<std::string>> texts = modelpool::cli::ReadTexts(flags.json_in);
    if (!texts.ok()) modelpool::cli::Fail(texts.status());
    docs = *std::move(texts);
  } else {
    absl::StatusOr<std::vector<std::vector<int32_t>>> read =
        modelpool::cli::ReadTokenIds(flags.json_in_ids);
    if (!read.ok()) modelpool::cli::Fail(read.status());
    ids = *std::move(read);
  }

  auto start = std::chrono::steady_clock::now();
  auto seconds_since = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // Unset flags leave the manager's limits (4 beams, 256 new tokens), room for the folder's
  // defaults.
  modelpool::SummarizationModelManager::Options manager_options{.model_dir = flags.model};
  if (flags.num_beams) manager_options.max_num_beams = *flags.num_beams;
  if (flags.max_new_tokens) manager_options.max_new_tokens = *flags.max_new_tokens;
  auto manager = modelpool::SummarizationModelManager::Create(manager_options);
  if (!manager.ok()) modelpool::cli::Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(5));
  if (!lease.ok()) modelpool::cli::Fail(lease.status());
  const double load_s = seconds_since();

  modelpool::GenerationOptions options;
  options.num_beams = flags.num_beams;
  options.max_new_tokens = flags.max_new_tokens;
  options.min_new_tokens = flags.min_new_tokens;
  options.no_repeat_ngram_size = flags.no_repeat_ngram_size;
  start = std::chrono::steady_clock::now();
  Json out = Json::array();
  size_t texts = 0;
  if (flags.json_in_ids.empty()) {
    auto summaries = (*lease)->Summarize(docs, options);
    if (!summaries.ok()) modelpool::cli::Fail(summaries.status());
    for (const std::string& summary : *summaries) std::cout << summary << "\n";
    out = *summaries;
    texts = summaries->size();
  } else {
    auto generated = (*lease)->Generate(ids, options);
    if (!generated.ok()) modelpool::cli::Fail(generated.status());
    for (const auto& row : *generated) std::cout << Json(row).dump() << "\n";
    out = *generated;
    texts = generated->size();
  }
  const double generate_s = seconds_since();
  std::cerr << "summarize: " << texts << " texts on " << (*lease)->device().ToString() << " in "
            << generate_s << " s (" << texts / std::max(generate_s, 1e-9)
            << " texts/s); loading took " << load_s << " s\n";
  if (!flags.json_out.empty()) {
    const absl::Status written = modelpool::cli::WriteOutputFile(
        flags.json_out, {out.dump(2, ' ', false, Json::error_handler_t::replace), "\n"});
    if (!written.ok()) modelpool::cli::Fail(written);
  }
  modelpool::cli::FinishStdout();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(argc, argv, kUsage);
  return Run(ReadFlags());
}
