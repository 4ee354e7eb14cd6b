// Its own binary: the default log level is read from the environment once per process, at the
// first message.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "modelpool/base/logging.h"

namespace modelpool {
namespace {

TEST_CASE("A MODELPOOL_LOG_LEVEL that cannot be read is reported, not silently taken as info") {
  REQUIRE(::setenv("MODELPOOL_LOG_LEVEL", "verbose", 1) == 0);
  std::vector<std::pair<LogSeverity, std::string>> seen;
  SetLogSink([&](LogSeverity severity, absl::string_view message) {
    seen.emplace_back(severity, std::string(message));
  });
  Log(LogSeverity::kInfo, "first message");
  SetLogSink(nullptr);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].first == LogSeverity::kWarning);
  CHECK(seen[0].second.find("MODELPOOL_LOG_LEVEL='verbose' is not valid") != std::string::npos);
  CHECK(seen[1].second == "first message");
  CHECK(LogLevel() == LogSeverity::kInfo);
}

}  // namespace
}  // namespace modelpool
