#ifndef MODELPOOL_EXAMPLES_COMMON_OUTPUT_FILE_H_
#define MODELPOOL_EXAMPLES_COMMON_OUTPUT_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace modelpool::cli {

// WriteOutputFile()
//
// Writes `pieces`, one after the other, to `path`, so that a failure never passes for success
// and never leaves half a file: a regular file (or a new one) is written to a temporary file
// beside it, synced, closed and renamed over it, keeping the old file's permissions (a file
// in a folder that takes no new files is overwritten in place); anything else that exists
// (/dev/stdout, a pipe, a terminal) is written in place. Every write, sync and
// close is checked: a full disk is `ResourceExhausted` naming `path` (and the old file, if
// any, is left as it was), a missing folder `NotFound`, a folder refused writes
// `PermissionDenied`.
absl::Status WriteOutputFile(const std::string& path, absl::Span<const std::string_view> pieces);

}  // namespace modelpool::cli

#endif  // MODELPOOL_EXAMPLES_COMMON_OUTPUT_FILE_H_
