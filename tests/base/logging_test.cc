#include "modelpool/base/logging.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "modelpool/base/settings.h"
#include "tests/testing/temp_dir.h"

namespace modelpool {
namespace {

using Seen = std::vector<std::pair<LogSeverity, std::string>>;

// Installs a sink that records every message; restores the default sink and `level` after.
class RecordingSink {
 public:
  explicit RecordingSink(LogSeverity level = LogSeverity::kDebug) : previous_(LogLevel()) {
    SetLogLevel(level);
    SetLogSink([this](LogSeverity severity, absl::string_view message) {
      seen_.emplace_back(severity, std::string(message));
    });
  }
  ~RecordingSink() {
    SetLogSink(nullptr);
    SetLogLevel(previous_);
  }
  const Seen& seen() const { return seen_; }

 private:
  LogSeverity previous_;
  Seen seen_;
};

// Whether `text` has the shape of `pattern`, where 'd' stands for any digit.
bool Matches(const std::string& text, const std::string& pattern) {
  if (text.size() != pattern.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool ok = pattern[i] == 'd' ? std::isdigit(static_cast<unsigned char>(text[i])) != 0
                                      : text[i] == pattern[i];
    if (!ok) return false;
  }
  return true;
}

TEST_CASE("Log sends messages to the installed sink until it is removed") {
  Seen seen;
  {
    RecordingSink sink;
    Log(LogSeverity::kWarning, "low on memory");
    seen = sink.seen();
  }
  Log(LogSeverity::kDebug, "not captured");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].first == LogSeverity::kWarning);
  CHECK(seen[0].second == "low on memory");
}

TEST_CASE("SetLogLevel drops messages below the level, for every sink") {
  RecordingSink sink(LogSeverity::kWarning);
  Log(LogSeverity::kDebug, "debug");
  Log(LogSeverity::kInfo, "info");
  Log(LogSeverity::kWarning, "warning");
  Log(LogSeverity::kError, "error");
  REQUIRE(sink.seen().size() == 2);
  CHECK(sink.seen()[0].second == "warning");
  CHECK(sink.seen()[1].second == "error");
  CHECK(LogLevel() == LogSeverity::kWarning);
  SetLogLevel(LogSeverity::kDebug);
  Log(LogSeverity::kDebug, "now debug");
  CHECK(sink.seen().back().second == "now debug");
}

TEST_CASE("ParseLogSeverity reads the four names in any case and refuses the rest") {
  CHECK(*ParseLogSeverity("debug") == LogSeverity::kDebug);
  CHECK(*ParseLogSeverity(" Info ") == LogSeverity::kInfo);
  CHECK(*ParseLogSeverity("WARNING") == LogSeverity::kWarning);
  CHECK(*ParseLogSeverity("error") == LogSeverity::kError);
  absl::StatusOr<LogSeverity> bad = ParseLogSeverity("verbose");
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("'verbose'") != absl::string_view::npos);
  for (LogSeverity s :
       {LogSeverity::kDebug, LogSeverity::kInfo, LogSeverity::kWarning, LogSeverity::kError}) {
    CHECK(*ParseLogSeverity(LogSeverityName(s)) == s);
  }
}

TEST_CASE("Settings::FromEnv refuses a MODELPOOL_LOG_LEVEL it cannot read, naming it") {
  const auto env = [](std::string value) {
    return [value](const std::string& name) -> std::optional<std::string> {
      if (name == "MODELPOOL_LOG_LEVEL") return value;
      return std::nullopt;
    };
  };
  absl::StatusOr<Settings> bad = Settings::FromEnv({}, env("verbose"));
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("MODELPOOL_LOG_LEVEL='verbose'") != absl::string_view::npos);
  CHECK(Settings::FromEnv({}, env("warning")).ok());
}

TEST_CASE("The default sink writes one line with the time, the thread and the severity") {
  const std::string path = (testing::TempDir("logging_test_stderr") / "stderr.txt").string();
  const LogSeverity previous = LogLevel();
  SetLogLevel(LogSeverity::kInfo);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(std::freopen(path.c_str(), "w", stderr) != nullptr);
  Log(LogSeverity::kWarning, "disk is slow");
  Log(LogSeverity::kDebug, "below the level");
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  SetLogLevel(previous);
  std::ifstream in(path);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // [YYYY-MM-DD HH:MM:SS.ffffff modelpool warning thread N] disk is slow
  INFO(written);
  REQUIRE(written.size() > 28);
  CHECK(written[0] == '[');
  CHECK(Matches(written.substr(1, 26), "dddd-dd-dd dd:dd:dd.dddddd"));
  const std::string rest = written.substr(27);
  const std::string prefix = " modelpool warning thread ";
  REQUIRE(rest.rfind(prefix, 0) == 0);
  const size_t end = rest.find(']');
  REQUIRE(end != std::string::npos);
  int64_t thread = 0;
  CHECK(absl::SimpleAtoi(rest.substr(prefix.size(), end - prefix.size()), &thread));
  CHECK(thread > 0);
  CHECK(rest.substr(end) == "] disk is slow\n");
}

}  // namespace
}  // namespace modelpool
