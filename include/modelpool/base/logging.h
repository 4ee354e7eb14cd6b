#ifndef MODELPOOL_BASE_LOGGING_H_
#define MODELPOOL_BASE_LOGGING_H_

#include <functional>

#include "absl/strings/string_view.h"

namespace modelpool {

enum class LogSeverity { kDebug, kInfo, kWarning, kError };

// Receives every message the SDK logs. Called from any thread, possibly concurrently.
using LogSink = std::function<void(LogSeverity severity, absl::string_view message)>;

// Routes the SDK's messages to `sink`; an empty sink restores the default, which writes
// messages at or above `MODELPOOL_LOG_LEVEL` (debug, info, warning, error; default info)
// to stderr. Thread-safe.
void SetLogSink(LogSink sink);

// Sends `message` to the current sink. Thread-safe.
void Log(LogSeverity severity, absl::string_view message);

}  // namespace modelpool

#endif  // MODELPOOL_BASE_LOGGING_H_
