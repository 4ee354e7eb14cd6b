#ifndef MODELPOOL_BENCHMARKS_PEER_H_
#define MODELPOOL_BENCHMARKS_PEER_H_

// Runs a peer's benchmark command and collects the JSON objects it prints, one per line, so a
// benchmark can print ratios ours/theirs measured in the same run.

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/common/command_line.h"

namespace modelpool::bench {

struct PeerOutput {
  std::vector<nlohmann::json> lines;  // every stdout line that is a JSON object
  int exit_code = -1;                 // -1 when it could not run or was killed by a signal
};

// Runs `command` through the shell. Lines that are not JSON objects are passed to stderr.
inline PeerOutput RunPeer(const std::string& command) {
  PeerOutput output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::string line;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) {
    line += buffer;
    if (line.empty() || line.back() != '\n') continue;
    const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!json.is_discarded() && json.is_object()) {
      output.lines.push_back(json);
    } else {
      std::fputs(line.c_str(), stderr);
    }
    line.clear();
  }
  const int status = pclose(pipe);
  output.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

// `cli::Fail`s unless the peer's command exited with status 0: a benchmark whose peer failed
// has no ratio to show, and must not pass for one that has.
inline void CheckPeerSucceeded(const PeerOutput& output, const std::string& command) {
  if (output.exit_code != 0) {
    cli::Fail(absl::StrCat("the peer failed (exit status ", output.exit_code, "): ", command));
  }
}

// The first line holding every key of `match` with the same value, or nullptr.
inline const nlohmann::json* FindLine(const PeerOutput& output, const nlohmann::json& match) {
  for (const nlohmann::json& line : output.lines) {
    bool all = true;
    for (const auto& [key, value] : match.items()) {
      all = all && line.contains(key) && line[key] == value;
    }
    if (all) return &line;
  }
  return nullptr;
}

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_PEER_H_
