#include "lib/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "modelpool/base/status.h"

namespace modelpool {
namespace {

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

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

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

absl::StatusOr<RegularFile> OpenRegularFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
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
  return RegularFile{std::move(fd), static_cast<int64_t>(st.st_size)};
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, int64_t max_bytes) {
  MODELPOOL_ASSIGN_OR_RETURN(const RegularFile file, OpenRegularFile(path));
  const ScopedFd& fd = file.fd;
  const auto too_big = [&](int64_t size) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is ", size, " bytes long; files of its kind are read up to ", max_bytes, " bytes"));
  };
  if (file.size > max_bytes) return too_big(file.size);
  std::string contents(static_cast<size_t>(file.size), '\0');
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
