// Summarizes documents with an encoder-decoder model (T5, BART), on every GPU of the host (or
// the CPU). Generation flags that are not given take the model folder's defaults
// (generation_config.json, else config.json), as transformers does.
//
//   summarize --model /models/flan-t5-large --input docs.txt      # one document a line
//   summarize --json-in docs.json --json-out summaries.json       # a JSON array of strings
//   summarize --json-in-ids ids.json                              # token ids in, ids out
//
// Without --model, a tiny random-weight model bundled with the sources runs: the output is
// nonsense, but every step is real.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "modelpool/managers/summarization_model_manager.h"
#include "nlohmann/json.hpp"

namespace {

using Json = nlohmann::json;

struct Flags {
  std::string model = MODELPOOL_BUNDLED_T5_MODEL;
  std::string input;
  std::string json_in;
  std::string json_in_ids;
  std::string json_out;
  std::optional<int> num_beams;
  std::optional<int> max_new_tokens;
  std::optional<int> min_new_tokens;
  std::optional<int> no_repeat_ngram_size;
};

int Usage(const std::string& problem) {
  std::cerr << "summarize: " << problem << "\n"
            << "usage: summarize [--model DIR] (--input DOCS_TXT | --json-in DOCS_JSON |\n"
            << "                 --json-in-ids IDS_JSON) [--num-beams N] [--max-new-tokens N]\n"
            << "                 [--min-new-tokens N] [--no-repeat-ngram-size N]\n"
            << "                 [--json-out OUT_JSON]\n";
  return 2;
}

int Fail(const absl::Status& status) {
  std::cerr << "summarize: " << status << "\n";
  return 1;
}

// Parses the flags into `flags`; returns an error message, empty when they are fine.
std::string Parse(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return arg + " needs a value";
    const std::string value = argv[++i];
    auto number = [&](int* out) -> std::string {
      try {
        size_t used = 0;
        *out = std::stoi(value, &used);
        if (used == value.size() && *out >= 0) return "";
      } catch (const std::exception&) {
      }
      return arg + " takes a non-negative integer, not '" + value + "'";
    };
    std::string error;
    if (arg == "--model")
      flags->model = value;
    else if (arg == "--input")
      flags->input = value;
    else if (arg == "--json-in")
      flags->json_in = value;
    else if (arg == "--json-in-ids")
      flags->json_in_ids = value;
    else if (arg == "--json-out")
      flags->json_out = value;
    else if (arg == "--num-beams")
      error = number(&flags->num_beams.emplace());
    else if (arg == "--max-new-tokens")
      error = number(&flags->max_new_tokens.emplace());
    else if (arg == "--min-new-tokens")
      error = number(&flags->min_new_tokens.emplace());
    else if (arg == "--no-repeat-ngram-size")
      error = number(&flags->no_repeat_ngram_size.emplace());
    else
      error = "unknown flag " + arg;
    if (!error.empty()) return error;
  }
  const int inputs = !flags->input.empty() + !flags->json_in.empty() + !flags->json_in_ids.empty();
  if (inputs != 1) return "give exactly one of --input, --json-in and --json-in-ids";
  if (flags->num_beams.value_or(1) < 1 || flags->max_new_tokens.value_or(1) < 1) {
    return "--num-beams and --max-new-tokens must be at least 1";
  }
  if (flags->model == MODELPOOL_BUNDLED_T5_MODEL && !flags->min_new_tokens.has_value()) {
    // Its random weights end every text at once, or repeat one token; a few different tokens
    // show that each step runs.
    flags->min_new_tokens = std::min(8, flags->max_new_tokens.value_or(128));
    if (!flags->max_new_tokens.has_value()) flags->max_new_tokens = 128;
    if (!flags->no_repeat_ngram_size.has_value()) flags->no_repeat_ngram_size = 2;
    std::cerr << "summarize: no --model: the bundled model has random weights; its summaries are"
                 " nonsense of at least "
              << *flags->min_new_tokens << " tokens\n";
  }
  return "";
}

absl::StatusOr<Json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  Json json = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return absl::InvalidArgumentError(path + " is not a JSON array");
  }
  return json;
}

int Run(const Flags& flags) {
  std::vector<std::string> docs;
  std::vector<std::vector<int32_t>> ids;
  if (!flags.input.empty()) {
    std::ifstream in(flags.input);
    if (!in) return Fail(absl::NotFoundError("cannot read " + flags.input));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) docs.push_back(line);
    }
  } else {
    auto json = ReadJson(flags.json_in.empty() ? flags.json_in_ids : flags.json_in);
    if (!json.ok()) return Fail(json.status());
    try {
      if (flags.json_in.empty()) {
        ids = json->get<std::vector<std::vector<int32_t>>>();
      } else {
        docs = json->get<std::vector<std::string>>();
      }
    } catch (const std::exception& e) {
      return Fail(absl::InvalidArgumentError(std::string("unexpected JSON: ") + e.what()));
    }
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
  if (!manager.ok()) return Fail(manager.status());
  auto lease = (*manager)->Acquire(absl::Minutes(5));
  if (!lease.ok()) return Fail(lease.status());
  const double load_s = seconds_since();

  modelpool::GenerationOptions options;
  options.num_beams = flags.num_beams;
  options.max_new_tokens = flags.max_new_tokens;
  options.min_new_tokens = flags.min_new_tokens;
  options.no_repeat_ngram_size = flags.no_repeat_ngram_size;
  start = std::chrono::steady_clock::now();
  Json out = Json::array();
  size_t texts = 0;
  if (ids.empty()) {
    auto summaries = (*lease)->Summarize(docs, options);
    if (!summaries.ok()) return Fail(summaries.status());
    for (const std::string& summary : *summaries) std::cout << summary << "\n";
    out = *summaries;
    texts = summaries->size();
  } else {
    auto generated = (*lease)->Generate(ids, options);
    if (!generated.ok()) return Fail(generated.status());
    for (const auto& row : *generated) std::cout << Json(row).dump() << "\n";
    out = *generated;
    texts = generated->size();
  }
  const double generate_s = seconds_since();
  std::cerr << "summarize: " << texts << " texts on " << (*lease)->device().ToString() << " in "
            << generate_s << " s (" << texts / std::max(generate_s, 1e-9)
            << " texts/s); loading took " << load_s << " s\n";
  if (!flags.json_out.empty()) {
    std::ofstream file(flags.json_out);
    file << out.dump(2) << "\n";
    if (!file) return Fail(absl::InternalError("cannot write " + flags.json_out));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (std::string problem = Parse(argc, argv, &flags); !problem.empty()) return Usage(problem);
  return Run(flags);
}
