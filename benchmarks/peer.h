#ifndef MODELPOOL_BENCHMARKS_PEER_H_
#define MODELPOOL_BENCHMARKS_PEER_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace modelpool::bench {

// RunPeer()
//
// Runs `command` through the shell (the peer: a Python script measuring the tool we compare
// with) and returns the JSON objects it printed, one per line; other lines pass through to
// stderr. Fails when the command cannot start or exits non-zero.
inline absl::StatusOr<std::vector<nlohmann::json>> RunPeer(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::UnavailableError(absl::StrCat("cannot run: ", command));
  std::vector<nlohmann::json> lines;
  std::string line;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) {
    line += buffer;
    if (line.back() != '\n') continue;
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) {
      lines.push_back(std::move(parsed));
    } else {
      fputs(line.c_str(), stderr);
    }
    line.clear();
  }
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat("peer exited with status ", status, ": ", command));
  }
  return lines;
}

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCHMARKS_PEER_H_
