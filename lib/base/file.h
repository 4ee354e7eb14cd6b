#ifndef MODELPOOL_LIB_BASE_FILE_H_
#define MODELPOOL_LIB_BASE_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace modelpool {

// A file descriptor, closed when this goes out of scope. Move-only.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();
  int get() const { return fd_; }

 private:
  int fd_;
};

// A regular file open for reading, and its size when it was opened.
struct RegularFile {
  ScopedFd fd;
  int64_t size = 0;
};

// OpenRegularFile()
//
// Opens the regular file at `path` (links are followed) for reading, with the errors of
// `ReadRegularFile` but no size limit. Never blocks: a FIFO is refused, not waited on.
absl::StatusOr<RegularFile> OpenRegularFile(const std::string& path);

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
