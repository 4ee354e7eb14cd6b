#ifndef MODELPOOL_BASE_LOGGING_H_
#define MODELPOOL_BASE_LOGGING_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace modelpool {

enum class LogSeverity { kDebug, kInfo, kWarning, kError };

// Receives every message the SDK logs at or above the log level. Called from any thread,
// possibly concurrently.
using LogSink = std::function<void(LogSeverity severity, absl::string_view message)>;

// Routes the SDK's messages to `sink`; an empty sink restores the default, which writes each
// message to stderr as one line with the local time, the thread id and the severity:
//   [2025-05-01 12:34:56.789012 modelpool warning thread 4242] message
// Thread-safe.
void SetLogSink(LogSink sink);

// Messages below `level` go to no sink. Until it is called, the level is what
// `MODELPOOL_LOG_LEVEL` says (debug, info, warning, error), else info; a value it cannot
// read is reported once, as a warning, and `Settings::FromEnv()` refuses it. Thread-safe.
void SetLogLevel(LogSeverity level);
LogSeverity LogLevel();

// "debug", "info", "warning", "error" (any case) to a severity; `InvalidArgument` otherwise.
absl::StatusOr<LogSeverity> ParseLogSeverity(absl::string_view name);
absl::string_view LogSeverityName(LogSeverity severity);

// Sends `message` to the current sink when `severity` is at or above the log level.
// Thread-safe.
void Log(LogSeverity severity, absl::string_view message);

}  // namespace modelpool

#endif  // MODELPOOL_BASE_LOGGING_H_
