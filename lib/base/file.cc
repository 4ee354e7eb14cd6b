#include "lib/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace modelpool {
namespace {

// Closes a file descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// `NotFound` for a missing `path`, naming the target when `path` is a link that leads nowhere
// (a Hugging Face cache whose blob was never downloaded looks like that).
absl::Status Missing(const std::string& path) {
  char target[4096];
  const ssize_t length = ::readlink(path.c_str(), target, sizeof(target) - 1);
  if (length > 0) {
    return absl::NotFoundError(absl::StrCat(path, " is a link to ",
                                            std::string(target, static_cast<size_t>(length)),
                                            ", which does not exist"));
  }
  return absl::NotFoundError(absl::StrCat(path, " does not exist"));
}

}  // namespace

absl::Status FileError(int error, const std::string& what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    const int error = errno;
    if (error == ENOENT) return Missing(path);
    return FileError(error, "cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return FileError(errno, "cannot inspect", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", KindOf(st.st_mode), ", not a regular file"));
  }
  const auto too_big = [&](int64_t size) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is ", size, " bytes long; files of its kind are read up to ", max_bytes, " bytes"));
  };
  if (st.st_size > max_bytes) return too_big(st.st_size);
  std::string contents(static_cast<size_t>(st.st_size), '\0');
  size_t filled = 0;
  while (true) {
    // One byte more than the file had, to notice that it grew past the limit.
    if (filled == contents.size()) {
      if (static_cast<int64_t>(filled) > max_bytes) return too_big(static_cast<int64_t>(filled));
      contents.resize(filled + 1 + filled / 2);
    }
    const ssize_t n = ::read(fd.get(), contents.data() + filled, contents.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "cannot read", path);
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  if (static_cast<int64_t>(filled) > max_bytes) return too_big(static_cast<int64_t>(filled));
  contents.resize(filled);
  return contents;
}

}  // namespace modelpool
