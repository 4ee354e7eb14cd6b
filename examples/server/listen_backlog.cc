#include "examples/server/listen_backlog.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>

namespace modelpool::server {
namespace {

// The port `fd` listens on, or -1 when it is not a listening TCP socket.
int ListeningPort(int fd) {
  int accepting = 0;
  socklen_t size = sizeof(accepting);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) != 0 || accepting == 0) {
    return -1;
  }
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return -1;
}

}  // namespace

int WidenListenBacklog(int port) {
  DIR* fds = opendir("/proc/self/fd");
  if (fds == nullptr) return 0;
  int widened = 0;
  while (const dirent* entry = readdir(fds)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(fds)) continue;
    if (ListeningPort(static_cast<int>(fd)) == port &&
        listen(static_cast<int>(fd), SOMAXCONN) == 0) {
      ++widened;
    }
  }
  closedir(fds);
  return widened;
}

}  // namespace modelpool::server
