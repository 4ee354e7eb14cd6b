// tokenize: the ids of texts, as a model would get them.
//
//   tokenize --tokenizer PATH [--max-length N] [--no-special-tokens] --json-in texts.json
//
// PATH is a model folder (tokenizer.json, spiece.model, vocab.json + merges.txt or vocab.txt)
// or one such file;
// texts.json is a JSON array of strings. Prints a JSON array with the ids of each text.
// Exit status 2, with a message on stderr, for bad arguments or files.

#include <fmt/core.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelpool/text/tokenizer.h"

namespace {

constexpr char kUsage[] =
    "usage: tokenize --tokenizer PATH [--max-length N] [--no-special-tokens] --json-in FILE";

[[noreturn]] void Fail(const std::string& message) {
  fmt::print(stderr, "tokenize: {}\n{}\n", message, kUsage);
  std::exit(2);
}

struct Args {
  std::string tokenizer;
  std::string json_in;
  modelpool::EncodeOptions options;
};

Args ParseArgs(int argc, char** argv) {
  Args args;
  args.options.max_length = 0;  // no limit unless asked
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "--tokenizer") {
      args.tokenizer = value();
    } else if (arg == "--json-in") {
      args.json_in = value();
    } else if (arg == "--max-length") {
      const std::string n = value();
      char* end = nullptr;
      const long max_length = std::strtol(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || max_length < 1 || max_length > 1'000'000) {
        Fail(fmt::format("--max-length takes a whole number from 1, not '{}'", n));
      }
      args.options.max_length = static_cast<int>(max_length);
    } else if (arg == "--no-special-tokens") {
      args.options.add_special_tokens = false;
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("{}\n", kUsage);
      std::exit(0);
    } else {
      Fail(fmt::format("unknown argument '{}'", arg));
    }
  }
  if (args.tokenizer.empty()) Fail("--tokenizer is required");
  if (args.json_in.empty()) Fail("--json-in is required");
  return args;
}

std::vector<std::string> ReadTexts(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(fmt::format("cannot open {}", path));
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    Fail(fmt::format("{} is not a JSON array of strings", path));
  }
  std::vector<std::string> texts;
  for (const nlohmann::json& text : json) {
    if (!text.is_string()) Fail(fmt::format("{} has an element that is not a string", path));
    texts.push_back(text.get<std::string>());
  }
  return texts;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  auto tokenizer = modelpool::LoadTokenizer(args.tokenizer);
  if (!tokenizer.ok()) Fail(std::string(tokenizer.status().ToString()));
  const std::vector<std::string> texts = ReadTexts(args.json_in);
  const modelpool::EncodedBatch batch = (*tokenizer)->EncodeBatch(texts, args.options);
  fmt::print("{}\n", nlohmann::json(batch.ids).dump());
  return 0;
}
