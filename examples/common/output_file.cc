#include "examples/common/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/base/file.h"

namespace modelpool::cli {
namespace {

absl::Status WriteAll(int fd, absl::Span<const std::string_view> pieces, const std::string& path) {
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const ssize_t n = ::write(fd, piece.data(), piece.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return FileError(errno, "cannot write", path);
      }
      piece.remove_prefix(static_cast<size_t>(n));
    }
  }
  return absl::OkStatus();
}

// Writes to what `path` already is: a device, a pipe or a terminal cannot be replaced, and a
// regular file in a folder that takes no new files can only be overwritten (`truncate`).
absl::Status WriteInPlace(const std::string& path, absl::Span<const std::string_view> pieces,
                          bool truncate) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | (truncate ? O_TRUNC : 0));
  if (fd < 0) return FileError(errno, "cannot open", path);
  absl::Status status = WriteAll(fd, pieces, path);
  if (::close(fd) != 0 && status.ok()) status = FileError(errno, "cannot write", path);
  return status;
}

mode_t NewFileMode() {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

absl::Status WriteOutputFile(const std::string& given_path,
                             absl::Span<const std::string_view> pieces) {
  // Through a link, the file it points to is replaced, not the link.
  std::error_code error;
  const std::filesystem::path resolved = std::filesystem::is_symlink(given_path, error)
                                             ? std::filesystem::weakly_canonical(given_path, error)
                                             : std::filesystem::path(given_path);
  const std::string path = error ? given_path : resolved.string();
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": it is a directory"));
  }
  if (exists && !S_ISREG(st.st_mode)) return WriteInPlace(path, pieces, /*truncate=*/false);

  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  // StrCat: "." + std::string draws a false -Wrestrict from gcc 12.
  std::string temporary = (dir / absl::StrCat(".", target.filename().string(), ".XXXXXX")).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) {
    const int error = errno;
    if (exists && (error == EACCES || error == EPERM || error == EROFS)) {
      return WriteInPlace(path, pieces, /*truncate=*/true);
    }
    return FileError(error, "cannot write", path);
  }
  absl::Status status = WriteAll(fd, pieces, path);
  if (status.ok() && ::fchmod(fd, exists ? (st.st_mode & 07777) : NewFileMode()) != 0) {
    status = FileError(errno, "cannot set the permissions of", path);
  }
  // Some file systems report a full disk only when the data reaches it.
  if (status.ok() && ::fsync(fd) != 0) status = FileError(errno, "cannot write", path);
  if (::close(fd) != 0 && status.ok()) status = FileError(errno, "cannot write", path);
  if (status.ok() && std::rename(temporary.c_str(), path.c_str()) != 0) {
    status = FileError(errno, absl::StrCat("cannot rename ", temporary, " to"), path);
  }
  if (!status.ok()) ::unlink(temporary.c_str());
  return status;
}

}  // namespace modelpool::cli
