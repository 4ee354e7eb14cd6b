#include "examples/common/command_line.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace modelpool::cli {
namespace {

std::string& ProgramName() {
  static std::string name = "modelpool";
  return name;
}

bool IsHelp(absl::string_view arg) {
  return arg == "--help" || arg == "-h" || arg == "-help" || arg == "--helpfull";
}

// The flags this program defined, not Abseil's own (flagfile, fromenv, ...).
std::vector<const absl::CommandLineFlag*> ProgramFlags() {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "absl/")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  return flags;
}

void PrintHelp(absl::string_view usage) {
  std::string text = absl::StrCat(usage,
                                  "\n\nflags (--name=value or --name value; '-' and '_' "
                                  "are the same in names):\n");
  for (const absl::CommandLineFlag* flag : ProgramFlags()) {
    absl::StrAppend(&text, "  --", flag->Name(), "  ", flag->Help(),
                    " (default: ", flag->DefaultValue().empty() ? "none" : flag->DefaultValue(),
                    ")\n");
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

// "--max-new-tokens=5" to "--max_new_tokens=5" when the program has a flag of that name.
std::string NormalizeFlagName(const std::string& arg) {
  if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) return arg;
  const size_t end = std::min(arg.find('='), arg.size());
  std::string name = arg.substr(2, end - 2);
  if (name.find('-') == std::string::npos || absl::FindCommandLineFlag(name) != nullptr) return arg;
  std::replace(name.begin(), name.end(), '-', '_');
  // Abseil spells "false" for a boolean --name as --noname.
  const bool known = absl::FindCommandLineFlag(name) != nullptr ||
                     (absl::StartsWith(name, "no") && absl::FindCommandLineFlag(name.substr(2)));
  return known ? absl::StrCat("--", name, arg.substr(end)) : arg;
}

}  // namespace

void ParseCommandLine(int argc, char** argv, absl::string_view usage) {
  if (argc > 0) {
    const std::string path = argv[0];
    ProgramName() = path.substr(path.find_last_of('/') + 1);
  }
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) args.push_back(i == 0 ? argv[i] : NormalizeFlagName(argv[i]));
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    // Abseil's own --help exits with status 1; asking for help is not an error.
    if (IsHelp(args[i])) {
      PrintHelp(usage);
      std::exit(0);
    }
  }
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), pointers.data());
  if (positional.size() > 1) {
    Fail(absl::StrCat("unexpected argument '", positional[1],
                      "': every argument is a --flag (see --help)"));
  }
}

void Fail(absl::string_view message) {
  absl::FPrintF(stderr, "%s: %s\n", ProgramName(), message);
  std::exit(1);
}

void Fail(const absl::Status& status) { Fail(status.ToString()); }

int64_t InRange(const absl::Flag<int64_t>& flag, int64_t min, int64_t max) {
  const int64_t value = absl::GetFlag(flag);
  if (value < min || value > max) {
    Fail(absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name(), " is ", value,
                      ": expected ", min, " to ", max));
  }
  return value;
}

std::string Required(const absl::Flag<std::string>& flag) {
  std::string value = absl::GetFlag(flag);
  if (value.empty()) {
    Fail(absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name(), " is needed"));
  }
  return value;
}

Device DeviceOf(const absl::Flag<std::string>& flag) {
  absl::StatusOr<Device> device = Device::Parse(absl::GetFlag(flag));
  if (!device.ok()) {
    Fail(absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name(), ": ",
                      device.status().message()));
  }
  return *device;
}

DType DTypeOf(const absl::Flag<std::string>& flag) {
  absl::StatusOr<DType> dtype = ParseDType(absl::GetFlag(flag));
  if (!dtype.ok()) {
    Fail(absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name(), ": ",
                      dtype.status().message()));
  }
  return *dtype;
}

void FinishStdout() {
  std::cout.flush();
  const bool lost = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
  if (lost) {
    const int error = errno;
    Fail(absl::StrCat("cannot write standard output: ",
                      error != 0 ? std::strerror(error) : "write failed"));
  }
}

}  // namespace modelpool::cli
