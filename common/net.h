/* net.h: small socket helpers in the manner of Redis's anet.c. Each returns
 * -1 on failure with a message in the caller's err buffer; none logs. */
#ifndef CHATMI_COMMON_NET_H
#define CHATMI_COMMON_NET_H

#include <stddef.h>

#define CM_NET_HOST_MAX 256

/* Parses "host:port", "[v6]:port" or ":port" (host "0.0.0.0"). */
int cm_net_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err, size_t errlen);

/* Opens a non-blocking, close-on-exec TCP listener bound to host:port with
 * SO_REUSEADDR (and SO_REUSEPORT when reuseport is set). Returns the fd. */
int cm_net_listen(const char *host, int port, int backlog, int reuseport, char *err, size_t errlen);

/* Connects (blocking, with a timeout in milliseconds) to host:port. Returns the fd. For tests and tools. */
int cm_net_connect(const char *host, int port, int timeout_ms, char *err, size_t errlen);

int cm_net_set_nonblock(int fd);
int cm_net_set_nodelay(int fd);

/* The port a bound socket listens on (for port 0). -1 on error. */
int cm_net_local_port(int fd);

#endif
