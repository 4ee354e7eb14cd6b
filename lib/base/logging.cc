#include "modelpool/base/logging.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "modelpool/base/internal/mutex.h"

namespace modelpool {
namespace {

constexpr int kLevelUnset = -1;
std::atomic<int> log_level{kLevelUnset};

// The level from MODELPOOL_LOG_LEVEL, read at the first message unless SetLogLevel came first.
LogSeverity LevelFromEnvOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* value = std::getenv("MODELPOOL_LOG_LEVEL");
    absl::StatusOr<LogSeverity> parsed =
        value != nullptr ? ParseLogSeverity(value) : LogSeverity::kInfo;
    int unset = kLevelUnset;
    log_level.compare_exchange_strong(unset, static_cast<int>(parsed.value_or(LogSeverity::kInfo)));
    if (!parsed.ok()) {
      Log(LogSeverity::kWarning, absl::StrCat("MODELPOOL_LOG_LEVEL='", value,
                                              "' is not valid: expected debug, info, warning or "
                                              "error; logging at ",
                                              LogSeverityName(LogLevel())));
    }
  });
  return static_cast<LogSeverity>(log_level.load(std::memory_order_relaxed));
}

void WriteToStderr(LogSeverity severity, absl::string_view message) {
  const std::string time =
      absl::FormatTime("%Y-%m-%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone());
  const std::string name(LogSeverityName(severity));
  // One call per line, so that lines from different threads do not interleave.
  std::fprintf(stderr, "[%s modelpool %s thread %ld] %.*s\n", time.c_str(), name.c_str(),
               static_cast<long>(::syscall(SYS_gettid)), static_cast<int>(message.size()),
               message.data());
}

struct SinkRegistry {
  Mutex mu;
  // Shared so that a message being written keeps its sink alive while another is installed.
  std::shared_ptr<const LogSink> sink ABSL_GUARDED_BY(mu);
};

SinkRegistry& Registry() {
  static auto* registry = new SinkRegistry;  // never destroyed: logging works during exit
  return *registry;
}

}  // namespace

absl::StatusOr<LogSeverity> ParseLogSeverity(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (lower == "debug") return LogSeverity::kDebug;
  if (lower == "info") return LogSeverity::kInfo;
  if (lower == "warning") return LogSeverity::kWarning;
  if (lower == "error") return LogSeverity::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log level '", name, "' is not one of debug, info, warning, error"));
}

absl::string_view LogSeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug:
      return "debug";
    case LogSeverity::kInfo:
      return "info";
    case LogSeverity::kWarning:
      return "warning";
    case LogSeverity::kError:
      return "error";
  }
  return "unknown";
}

void SetLogLevel(LogSeverity level) {
  log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogSeverity LogLevel() {
  const int level = log_level.load(std::memory_order_relaxed);
  return level == kLevelUnset ? LevelFromEnvOnce() : static_cast<LogSeverity>(level);
}

void SetLogSink(LogSink sink) {
  auto shared = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  SinkRegistry& r = Registry();
  MutexLock lock(&r.mu);
  r.sink = std::move(shared);
}

void Log(LogSeverity severity, absl::string_view message) {
  if (severity < LogLevel()) return;
  std::shared_ptr<const LogSink> sink;
  {
    SinkRegistry& r = Registry();
    MutexLock lock(&r.mu);
    sink = r.sink;
  }
  if (sink) {
    (*sink)(severity, message);
  } else {
    WriteToStderr(severity, message);
  }
}

}  // namespace modelpool
