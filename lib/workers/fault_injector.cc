#include "modelpool/workers/fault_injector.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/base/env_parsing.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

constexpr absl::Duration kLongestStall = absl::Hours(24);

absl::Status BadRule(absl::string_view rule, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("fault rule \"", rule, "\": ", problem));
}

absl::StatusOr<FaultKind> ParseKind(absl::string_view name) {
  for (FaultKind kind :
       {FaultKind::kThrow, FaultKind::kStall, FaultKind::kOutOfMemory, FaultKind::kFailLoad}) {
    if (name == FaultKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", name, "\" is not a fault: throw, stall, oom or load"));
}

// One rule: `kind` or `kind:key=value,...`.
absl::StatusOr<FaultRule> ParseRule(absl::string_view text) {
  const std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  FaultRule rule;
  absl::StatusOr<FaultKind> kind = ParseKind(absl::StripAsciiWhitespace(parts.first));
  if (!kind.ok()) return BadRule(text, kind.status().message());
  rule.kind = *kind;
  for (absl::string_view setting : absl::StrSplit(parts.second, ',', absl::SkipWhitespace())) {
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(setting, absl::MaxSplits('=', 1));
    const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "p") {
      if (!absl::SimpleAtod(value, &rule.probability) || !(rule.probability >= 0) ||
          rule.probability > 1) {
        return BadRule(text, "p must be a probability from 0 to 1");
      }
    } else if (key == "nth") {
      if (!absl::SimpleAtoi(value, &rule.nth) || rule.nth < 1) {
        return BadRule(text, "nth must be a whole number from 1");
      }
    } else if (key == "model") {
      if (value.empty()) return BadRule(text, "model needs a model id");
      rule.model = std::string(value);
    } else if (key == "device") {
      absl::StatusOr<Device> device = Device::Parse(value);
      if (!device.ok()) return BadRule(text, device.status().message());
      rule.device = *device;
    } else if (key == "for" && rule.kind == FaultKind::kStall) {
      absl::StatusOr<absl::Duration> stall =
          base_internal::ParseDurationVar("for", value, kLongestStall);
      if (!stall.ok() || *stall <= absl::ZeroDuration()) {
        return BadRule(text, "for must be a positive duration such as 10s, at most 24h");
      }
      rule.stall = *stall;
    } else {
      return BadRule(text, absl::StrCat("unknown setting \"", key,
                                        "\" (p, nth, model, device, and for on a stall)"));
    }
  }
  if (rule.probability == 0 && rule.nth == 0) {
    return BadRule(text, "say when it fires: p=<probability> or nth=<call>");
  }
  return rule;
}

}  // namespace

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kThrow:
      return "throw";
    case FaultKind::kStall:
      return "stall";
    case FaultKind::kOutOfMemory:
      return "oom";
    case FaultKind::kFailLoad:
      return "load";
  }
  return "unknown";
}

FaultInjector::FaultInjector(std::vector<FaultRule> rules, uint64_t seed)
    : rules_(std::move(rules)) {
  MutexLock lock(&mu_);
  matched_.assign(rules_.size(), 0);
  random_.seed(seed);
}

absl::StatusOr<std::shared_ptr<FaultInjector>> FaultInjector::Parse(absl::string_view spec) {
  std::vector<FaultRule> rules;
  uint64_t seed = 1;
  for (absl::string_view text : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
    text = absl::StripAsciiWhitespace(text);
    if (absl::ConsumePrefix(&text, "seed=")) {
      if (!absl::SimpleAtoi(text, &seed)) return BadRule(text, "seed must be a whole number");
      continue;
    }
    MODELPOOL_ASSIGN_OR_RETURN(FaultRule rule, ParseRule(text));
    rules.push_back(std::move(rule));
  }
  if (rules.empty())
    return absl::InvalidArgumentError("no fault rules in \"" + std::string(spec) + "\"");
  return std::make_shared<FaultInjector>(std::move(rules), seed);
}

absl::StatusOr<std::shared_ptr<FaultInjector>> FaultInjector::FromEnv(
    const Settings::EnvLookup& lookup) {
  const Settings::EnvLookup& env = lookup ? lookup : Settings::EnvLookup(base_internal::ProcessEnv);
  const std::optional<std::string> spec = env("MODELPOOL_FAULTS");
  if (!spec || absl::StripAsciiWhitespace(*spec).empty()) return std::shared_ptr<FaultInjector>();
  absl::StatusOr<std::shared_ptr<FaultInjector>> injector = Parse(*spec);
  if (!injector.ok()) return base_internal::NameVariable(injector.status(), "MODELPOOL_FAULTS");
  return injector;
}

void FaultInjector::ReleaseStalls() {
  MutexLock lock(&mu_);
  ++stall_epoch_;
  released_.SignalAll();
}

FaultInjector::Counts FaultInjector::counts() const {
  MutexLock lock(&mu_);
  return counts_;
}

std::optional<FaultRule> FaultInjector::Draw(bool load, const std::string& model,
                                             const Device& device) {
  std::optional<FaultRule> fired;
  MutexLock lock(&mu_);
  ++(load ? counts_.loads : counts_.calls);
  for (size_t i = 0; i < rules_.size(); ++i) {
    const FaultRule& rule = rules_[i];
    if ((rule.kind == FaultKind::kFailLoad) != load) continue;
    if (!rule.model.empty() && rule.model != model) continue;
    if (rule.device && *rule.device != device) continue;
    const int64_t n = ++matched_[i];
    // Every matching rule draws, so that one rule's draws do not depend on the others'.
    const bool drawn = rule.probability > 0 &&
                       std::uniform_real_distribution<double>(0, 1)(random_) < rule.probability;
    if (!fired && (n == rule.nth || drawn)) fired = rule;
  }
  if (fired) {
    switch (fired->kind) {
      case FaultKind::kThrow:
        ++counts_.thrown;
        break;
      case FaultKind::kStall:
        ++counts_.stalled;
        break;
      case FaultKind::kOutOfMemory:
        ++counts_.out_of_memory;
        break;
      case FaultKind::kFailLoad:
        ++counts_.failed_loads;
        break;
    }
  }
  return fired;
}

std::optional<FaultInjector::Injected> FaultInjector::OnCall(const std::string& model,
                                                             const Device& device) {
  if (!enabled()) return std::nullopt;
  std::optional<FaultRule> rule = Draw(/*load=*/false, model, device);
  if (!rule) return std::nullopt;
  return Injected{rule->kind, rule->stall};
}

absl::Status FaultInjector::OnLoad(const std::string& model, const Device& device) {
  if (!enabled()) return absl::OkStatus();
  if (!Draw(/*load=*/true, model, device)) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("injected fault: loading ", model, " on ", device.ToString(), " failed"));
}

void FaultInjector::Stall(absl::Duration duration) {
  const absl::Time until = absl::Now() + duration;
  MutexLock lock(&mu_);
  const uint64_t epoch = stall_epoch_;
  while (stall_epoch_ == epoch && absl::Now() < until) mu_.WaitWithDeadline(&released_, until);
}

}  // namespace modelpool
