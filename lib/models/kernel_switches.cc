#include "lib/models/kernel_switches.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "lib/base/env_parsing.h"
#include "modelpool/base/logging.h"

namespace modelpool {
namespace {

// The value of `name`, cut after 64 characters (marked "..."): longer than any word a switch
// takes, so it stays unreadable, and a warning never echoes megabytes.
std::optional<std::string> BoundedValue(const Settings::EnvLookup& env, const std::string& name) {
  constexpr size_t kLongest = 64;
  std::optional<std::string> value = env(name);
  if (value.has_value() && value->size() > kLongest) {
    value->resize(kLongest);
    value->append("...");
  }
  return value;
}

void ReportIgnored(const absl::Status& status, absl::string_view kept) {
  Log(LogSeverity::kWarning, absl::StrCat(status.message(), "; keeping the default, ", kept));
}

// `value` as one of `words` (any case, spaces around ignored): its index. The first word is the
// switch's default, which an unreadable value keeps.
std::optional<size_t> ReadWord(absl::string_view name, const std::optional<std::string>& value,
                               const std::vector<absl::string_view>& words) {
  if (!value.has_value()) return std::nullopt;
  const std::string word = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*value));
  for (size_t i = 0; i < words.size(); ++i) {
    if (word == words[i]) return i;
  }
  std::string expected;
  for (size_t i = 0; i < words.size(); ++i) {
    absl::StrAppend(&expected, i == 0 ? "" : i + 1 == words.size() ? " or " : ", ", words[i]);
  }
  ReportIgnored(base_internal::BadVariable(name, *value, expected), words.front());
  return std::nullopt;
}

// Sets `on` from `name` where it holds a boolean; reports any other value, keeping `on`.
void ReadOnOff(const Settings::EnvLookup& env, const std::string& name, bool& on) {
  const std::optional<std::string> value = BoundedValue(env, name);
  if (!value.has_value()) return;
  const absl::StatusOr<bool> parsed = base_internal::ParseBool(name, *value);
  if (parsed.ok()) {
    on = *parsed;
  } else {
    ReportIgnored(parsed.status(), on ? "on" : "off");
  }
}

}  // namespace

KernelSwitches ReadKernelSwitches(const Settings::EnvLookup& lookup) {
  const Settings::EnvLookup& env = lookup ? lookup : Settings::EnvLookup(base_internal::ProcessEnv);
  KernelSwitches switches;
  ReadOnOff(env, "MODELPOOL_FUSED_KERNELS", switches.fused_kernels);
  ReadOnOff(env, "MODELPOOL_OVERLAPPED_LAUNCHES", switches.overlapped_launches);
  // In the order of the enums, defaults first.
  if (const auto attention =
          ReadWord("MODELPOOL_BERT_ATTENTION", BoundedValue(env, "MODELPOOL_BERT_ATTENTION"),
                   {"packed", "flash", "efficient"})) {
    switches.bert_attention = static_cast<BertAttention>(*attention);
  }
  if (const auto decoder =
          ReadWord("MODELPOOL_DECODER_ATTENTION", BoundedValue(env, "MODELPOOL_DECODER_ATTENTION"),
                   {"kernels", "matmul"})) {
    switches.decoder_kernels = *decoder == 0;
  }
  return switches;
}

const KernelSwitches& ProcessKernelSwitches() {
  static const KernelSwitches switches = ReadKernelSwitches();
  return switches;
}

}  // namespace modelpool
