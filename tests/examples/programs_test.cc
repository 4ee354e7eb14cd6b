// The installed programs (modelpool-embed, -summarize, -tokenize), run as a user runs them:
// each bad argument or file ends with status 1 and a message naming it, and no output is lost
// without an error.

#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string out, err;
  bool ErrMentions(const std::string& text) const { return err.find(text) != std::string::npos; }
};

std::string Contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `arg` in single quotes for the shell.
std::string Quote(const std::string& arg) {
  std::string quoted = "'";
  for (const char c : arg) {
    if (c == '\'') {
      quoted.append("'\\''");
    } else {
      quoted.push_back(c);
    }
  }
  quoted.push_back('\'');
  return quoted;
}

// Runs `program` with `args`, and `env` ("NAME=value") set; stdout goes to `stdout_path` when
// given.
Result Run(const std::string& program, const std::vector<std::string>& args,
           const std::string& stdout_path = "", const std::string& env = "") {
  static const fs::path dir = testing::TempDir("programs_test");
  std::string command = env.empty() ? "" : "env " + Quote(env) + " ";
  command.append(Quote(program));
  for (const std::string& arg : args) command.append(" ").append(Quote(arg));
  const std::string out = stdout_path.empty() ? (dir / "out.txt").string() : stdout_path;
  command.append(" >").append(Quote(out));
  command.append(" 2>").append(Quote((dir / "err.txt").string())).append(" </dev/null");
  Result result;
  const int raw = std::system(command.c_str());
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  if (stdout_path.empty()) result.out = Contents(out);
  result.err = Contents(dir / "err.txt");
  return result;
}

const std::string kEmbed = MODELPOOL_EMBED_PROGRAM;
const std::string kSummarize = MODELPOOL_SUMMARIZE_PROGRAM;
const std::string kTokenize = MODELPOOL_TOKENIZE_PROGRAM;
const std::string kBert = std::string(MODELPOOL_SOURCE_DIR) + "/tests/data/models/bert-tiny-cls";

fs::path WriteFile(const std::string& name, const std::string& contents) {
  static const fs::path dir = testing::TempDir("programs_test_inputs");
  std::ofstream(dir / name, std::ios::binary) << contents;
  return dir / name;
}

TEST_CASE("Every program prints its usage for --help and -h and exits with 0") {
  for (const std::string& program : {kEmbed, kSummarize, kTokenize}) {
    for (const char* help : {"--help", "-h"}) {
      const Result result = Run(program, {help});
      INFO(program << " " << help << ": " << result.err);
      CHECK(result.status == 0);
      CHECK(result.out.rfind("modelpool-", 0) == 0);  // the usage line, then the flags
      const bool lists_flags = result.out.find("--model") != std::string::npos ||
                               result.out.find("--tokenizer") != std::string::npos;
      CHECK(lists_flags);
    }
  }
}

TEST_CASE("Every program refuses an unknown flag and a stray argument, naming them") {
  for (const std::string& program : {kEmbed, kSummarize, kTokenize}) {
    const Result unknown = Run(program, {"--colour=blue"});
    INFO(program << ": " << unknown.err);
    CHECK(unknown.status == 1);
    CHECK(unknown.ErrMentions("colour"));
    const Result stray = Run(program, {"stray.txt"});
    CHECK(stray.status == 1);
    CHECK(stray.ErrMentions("'stray.txt'"));
  }
}

TEST_CASE("--flag=value, --flag value and --flag-name are the same flag") {
  const fs::path texts = WriteFile("flags.json", R"(["hello world"])");
  const Result equals = Run(kTokenize, {"--tokenizer=" + kBert, "--json_in=" + texts.string()});
  const Result spaced = Run(kTokenize, {"--tokenizer", kBert, "--json-in", texts.string()});
  REQUIRE(equals.status == 0);
  REQUIRE(spaced.status == 0);
  CHECK(equals.out == spaced.out);
  CHECK(equals.out.rfind("[[", 0) == 0);
}

TEST_CASE("Integer flags out of range are errors naming the flag, not wrapped values") {
  const fs::path texts = WriteFile("range.txt", "a text\n");
  // strtoll's ERANGE used to go unchecked: 99999999999999999999 passed as a batch limit.
  const Result huge = Run(kEmbed, {"--input", texts.string(), "--json-out", "/dev/null",
                                   "--max-batch-tokens", "99999999999999999999"});
  CHECK(huge.status == 1);
  CHECK(huge.ErrMentions("max_batch_tokens"));
  const Result zero =
      Run(kEmbed, {"--input", texts.string(), "--json-out", "/dev/null", "--max-batch-tokens=0"});
  CHECK(zero.status == 1);
  CHECK(zero.ErrMentions("--max_batch_tokens is 0"));
  const Result min_above_max = Run(
      kSummarize, {"--input", texts.string(), "--max-new-tokens", "4", "--min-new-tokens", "9"});
  CHECK(min_above_max.status == 1);
  CHECK(min_above_max.ErrMentions("--min_new_tokens 9 is above --max_new_tokens 4"));
}

TEST_CASE("An input that is a directory is an error, not zero documents") {
  const fs::path dir = testing::TempDir("programs_test_dir_input");
  const Result embed = Run(kEmbed, {"--input", dir.string(), "--json-out", "/dev/null"});
  CHECK(embed.status == 1);
  CHECK(embed.ErrMentions(dir.string() + " is a directory"));
  const Result json = Run(kEmbed, {"--json-in", dir.string(), "--json-out", "/dev/null"});
  CHECK(json.status == 1);
  CHECK(json.ErrMentions(dir.string() + " is a directory"));
  const Result ids = Run(kSummarize, {"--json-in-ids", dir.string()});
  CHECK(ids.status == 1);
  CHECK(ids.ErrMentions(dir.string() + " is a directory"));
  const Result tokenize = Run(kTokenize, {"--tokenizer", kBert, "--json-in", dir.string()});
  CHECK(tokenize.status == 1);
  CHECK(tokenize.ErrMentions(dir.string() + " is a directory"));
}

TEST_CASE("summarize refuses token ids that do not fit, naming the element") {
  const fs::path ids = WriteFile("ids.json", "[[13, 4294967421]]");
  const Result result = Run(kSummarize, {"--json-in-ids", ids.string()});
  CHECK(result.status == 1);
  CHECK(result.ErrMentions("element [0][1] is 4294967421"));
}

TEST_CASE("Output to a full device fails with status 1 instead of passing for success") {
  if (!fs::exists("/dev/full")) return;
  const fs::path texts = WriteFile("full.txt", "one\ntwo\n");
  const Result npy = Run(kEmbed, {"--input", texts.string(), "--output", "/dev/full"});
  CHECK(npy.status == 1);
  CHECK(npy.ErrMentions("cannot write /dev/full"));
  const Result json = Run(
      kSummarize, {"--input", texts.string(), "--max-new-tokens", "2", "--json-out", "/dev/full"});
  CHECK(json.status == 1);
  CHECK(json.ErrMentions("cannot write /dev/full"));
  const fs::path words = WriteFile("full.json", R"(["one"])");
  const Result out =
      Run(kTokenize, {"--tokenizer", kBert, "--json-in", words.string()}, "/dev/full");
  CHECK(out.status == 1);
  CHECK(out.ErrMentions("cannot write standard output"));
}

TEST_CASE("summarize answers every input line, blank ones included") {
  const fs::path docs = WriteFile("blank.txt", "first document\n\nthird document\n");
  const Result result = Run(kSummarize, {"--input", docs.string(), "--max-new-tokens", "3"});
  REQUIRE(result.status == 0);
  CHECK(std::count(result.out.begin(), result.out.end(), '\n') == 3);
}

TEST_CASE("embed writes a whole .npy file and says so") {
  const fs::path texts = WriteFile("embed.txt", "one\n\nthree\n");
  const fs::path npy = testing::TempDir("programs_test_npy") / "vectors.npy";
  const Result result = Run(kEmbed, {"--input", texts.string(), "--output", npy.string()});
  REQUIRE(result.status == 0);
  CHECK(result.out.find("3 documents") == 0);
  const std::string bytes = Contents(npy);
  CHECK(bytes.rfind("\x93NUMPY", 0) == 0);
  CHECK(bytes.size() == 128 + 3 * 48 * 4);  // a 128-byte header, then 3 vectors of 48 floats
}

}  // namespace
}  // namespace modelpool

namespace modelpool {
namespace {

// A Hugging Face cache holding bert-tiny-cls as acme/tiny-bert, its files linked to blobs.
fs::path MakeHubCache() {
  const fs::path hub = testing::TempDir("programs_test_hub");
  const fs::path repo = hub / "models--acme--tiny-bert";
  const std::string commit = "89abcdef0123456789abcdef0123456789abcdef";
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << commit;
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots");
  fs::copy(kBert, repo / "snapshots" / commit, fs::copy_options::recursive);
  return hub;
}

TEST_CASE("--model takes a Hugging Face id from the local cache; a missing one says where") {
  const fs::path hub = MakeHubCache();
  const fs::path texts = WriteFile("hub.txt", "one\ntwo\n");
  const Result found = Run(
      kEmbed, {"--model", "acme/tiny-bert", "--input", texts.string(), "--json-out", "/dev/null"},
      "", "HF_HUB_CACHE=" + hub.string());
  INFO(found.err);
  CHECK(found.status == 0);
  CHECK(found.ErrMentions("acme/tiny-bert"));
  CHECK_FALSE(found.ErrMentions("89abcdef"));
  const Result missing =
      Run(kEmbed, {"--model", "acme/other", "--input", texts.string(), "--json-out", "/dev/null"},
          "", "HF_HUB_CACHE=" + hub.string());
  CHECK(missing.status == 1);
  CHECK(missing.ErrMentions("model acme/other is not in the Hugging Face cache"));
  CHECK(missing.ErrMentions((hub / "models--acme--other").string()));
  const Result tokenize = Run(kTokenize,
                              {"--tokenizer", "acme/tiny-bert", "--json-in",
                               WriteFile("hub.json", R"(["hello"])").string()},
                              "", "HF_HUB_CACHE=" + hub.string());
  CHECK(tokenize.status == 0);
  CHECK(tokenize.out.rfind("[[", 0) == 0);
}

TEST_CASE("summarize with a million new tokens allowed runs in the memory decoding uses") {
  // The bias and caches were allocated for the limit: 20,000 took 15.8 GB, 10^6 failed in the
  // allocator without naming the flag.
  const fs::path docs = WriteFile("million.txt", "a short document\n");
  const Result result = Run(kSummarize, {"--input", docs.string(), "--max-new-tokens", "1000000",
                                         "--min-new-tokens", "0", "--no-repeat-ngram-size", "1"});
  INFO(result.err);
  CHECK(result.status == 0);
  CHECK(std::count(result.out.begin(), result.out.end(), '\n') == 1);
}

}  // namespace
}  // namespace modelpool
