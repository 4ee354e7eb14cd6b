#ifndef MODELPOOL_LIB_BASE_FILE_H_
#define MODELPOOL_LIB_BASE_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace modelpool {

// ReadRegularFile()
//
// The contents of the regular file at `path` (links are followed), which must be at most
// `max_bytes` long. Folders, FIFOs, devices and sockets are refused before a byte is read: a
// FIFO blocks until someone writes to it, and a device may never end. Errors name `path`:
// `NotFound` when nothing is there (a link that leads nowhere says so), `PermissionDenied`,
// `InvalidArgument` for something other than a regular file or a file over `max_bytes`.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, int64_t max_bytes);

// The status of a failed system call on `path`, from `errno` value `error`: `NotFound` for
// ENOENT (and ENOTDIR), `PermissionDenied` for EACCES, EPERM and EROFS, `ResourceExhausted`
// for a full disk (ENOSPC, EDQUOT, EFBIG), else `Internal`. The message is
// "<what> <path>: <strerror>".
absl::Status FileError(int error, const std::string& what, const std::string& path);

}  // namespace modelpool

#endif  // MODELPOOL_LIB_BASE_FILE_H_
