/* www.h: the browser client's files (--www-dir), read once when a child
 * starts and served from memory.
 *
 * Only the fixed list of files in www.c is served, each at one exact path:
 * no byte of a request's path ever reaches the file system, so no request
 * can leave the directory (no "..", no percent-decoding, no symlink games
 * to reason about). A file that cannot be read is simply not served. */
#ifndef CHATMI_GATEWAY_WWW_H
#define CHATMI_GATEWAY_WWW_H

#include <stddef.h>

#define GW_WWW_FILE_MAX (1024 * 1024) /* a larger file is not loaded */

/* The headers every client file is served with (each line ends CRLF). The
 * Content-Security-Policy lets the page run only its own script and style
 * and talk only to its own origin (WebSocket included), so even a bug that
 * put message text into HTML could not run a script. */
#define GW_WWW_HEADERS                                                                                    \
    "Cache-Control: no-cache\r\n"                                                                         \
    "X-Content-Type-Options: nosniff\r\n"                                                                 \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "  \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"                 \
    "X-Frame-Options: DENY\r\n"                                                                           \
    "Referrer-Policy: no-referrer\r\n"

struct gw_www_file {
    const char *path;  /* the request path it answers, exactly: "/app.js" */
    const char *name;  /* its name in --www-dir: "app.js" */
    const char *ctype; /* Content-Type */
    char *data;        /* NULL: not loaded (answered 404) */
    size_t len;
};

#define GW_WWW_NFILES 4

struct gw_www {
    struct gw_www_file files[GW_WWW_NFILES];
};

/* Fills w with the file list and reads each file from dir. A file that is
 * missing, unreadable, empty, not a regular file or over GW_WWW_FILE_MAX is
 * left unloaded, and the first such problem is written to err (caller's
 * buffer, may be NULL). Returns how many files were loaded; out of memory
 * counts as a file not loaded. Free with gw_www_free. */
size_t gw_www_load(struct gw_www *w, const char *dir, char *err, size_t errlen);

/* The client file answering this request path (compared byte for byte; no
 * decoding), loaded or not; NULL when the path is none of the client's. */
const struct gw_www_file *gw_www_route(const struct gw_www *w, const char *path, size_t len);

/* Frees what gw_www_load read; w can be loaded again. */
void gw_www_free(struct gw_www *w);

#endif
