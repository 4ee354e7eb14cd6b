#include "modelpool/base/logging.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "modelpool/base/internal/mutex.h"

namespace modelpool {
namespace {

LogSeverity ThresholdFromEnv() {
  const char* value = std::getenv("MODELPOOL_LOG_LEVEL");
  const std::string level = value ? absl::AsciiStrToLower(value) : "info";
  if (level == "debug") return LogSeverity::kDebug;
  if (level == "warning") return LogSeverity::kWarning;
  if (level == "error") return LogSeverity::kError;
  return LogSeverity::kInfo;
}

void WriteToStderr(LogSeverity severity, absl::string_view message) {
  static const LogSeverity threshold = ThresholdFromEnv();
  if (severity < threshold) return;
  static constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
  std::fprintf(stderr, "[modelpool %s] %.*s\n", kNames[static_cast<int>(severity)],
               static_cast<int>(message.size()), message.data());
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

void SetLogSink(LogSink sink) {
  auto shared = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  SinkRegistry& r = Registry();
  MutexLock lock(&r.mu);
  r.sink = std::move(shared);
}

void Log(LogSeverity severity, absl::string_view message) {
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
