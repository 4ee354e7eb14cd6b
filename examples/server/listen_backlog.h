#ifndef MODELPOOL_EXAMPLES_SERVER_LISTEN_BACKLOG_H_
#define MODELPOOL_EXAMPLES_SERVER_LISTEN_BACKLOG_H_

namespace modelpool::server {

// Note [Listen backlog]
// cpp-httplib 0.11 (Debian's, a compiled library) listens with a backlog of 5 connections.
// When hundreds of clients connect at once, the kernel drops the connections that overflow it
// after the client has already sent its request, and those clients read a reset instead of a
// reply. Calling listen() again on a listening socket sets its backlog anew (Linux), so the
// server widens it to the system's maximum once httplib has bound the port.

// Sets the backlog of this process's listening TCP sockets on `port` to SOMAXCONN; returns how
// many it found.
int WidenListenBacklog(int port);

}  // namespace modelpool::server

#endif  // MODELPOOL_EXAMPLES_SERVER_LISTEN_BACKLOG_H_
