#include "modelpool/base/logging.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

namespace modelpool {
namespace {

TEST_CASE("Log sends messages to the installed sink until it is removed") {
  std::vector<std::pair<LogSeverity, std::string>> seen;
  SetLogSink([&](LogSeverity severity, absl::string_view message) {
    seen.emplace_back(severity, std::string(message));
  });
  Log(LogSeverity::kWarning, "low on memory");
  SetLogSink(nullptr);
  Log(LogSeverity::kDebug, "not captured");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first == LogSeverity::kWarning);
  CHECK(seen[0].second == "low on memory");
}

}  // namespace
}  // namespace modelpool
