#ifndef MODELPOOL_EXAMPLES_COMMON_COMMAND_LINE_H_
#define MODELPOOL_EXAMPLES_COMMON_COMMAND_LINE_H_

// The command lines of modelpool's programs (embed, summarize, tokenize and the benchmarks),
// read with Abseil's flags: each program defines its flags with ABSL_FLAG and calls
// `ParseCommandLine` first thing in main.

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "modelpool/base/device.h"
#include "modelpool/base/dtype.h"

namespace modelpool::cli {

// ParseCommandLine()
//
// Sets the flags from `argv`: `--flag=value` and `--flag value` both work, and `--flag-name`
// is the same flag as `--flag_name`. `--help` (or `-h`) prints `usage` and the program's flags
// to stdout and exits with status 0. An unknown flag, a value that does not parse (an integer
// outside its type's range included) or an argument that is not a flag is reported on stderr
// and exits with status 1.
void ParseCommandLine(int argc, char** argv, absl::string_view usage);

// Prints "<program>: <message>" to stderr and exits with status 1.
[[noreturn]] void Fail(absl::string_view message);
[[noreturn]] void Fail(const absl::Status& status);

// The value of `flag`, which must lie in [min, max]; otherwise `Fail`s naming the flag, the
// value and the range.
int64_t InRange(const absl::Flag<int64_t>& flag, int64_t min, int64_t max);

// The value of a string flag that must be given; otherwise `Fail`s naming it.
std::string Required(const absl::Flag<std::string>& flag);

// The device (cpu, cuda:N) or compute type (float32, float16, bfloat16) a flag names;
// otherwise `Fail`s naming the flag.
Device DeviceOf(const absl::Flag<std::string>& flag);
DType DTypeOf(const absl::Flag<std::string>& flag);

// Flushes stdout and `Fail`s if anything written to it was lost (a closed pipe, a full disk).
// Call before returning 0 from a program that prints its results.
void FinishStdout();

}  // namespace modelpool::cli

#endif  // MODELPOOL_EXAMPLES_COMMON_COMMAND_LINE_H_
