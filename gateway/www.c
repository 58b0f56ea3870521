/* www.c: the browser client's files, read at start and served from memory
 * (see www.h for why only a fixed list of names is served). */
#include "gateway/www.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RFC 9239: JavaScript is text/javascript. */
static const struct {
    const char *path, *name, *ctype;
} FILES[GW_WWW_NFILES] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
    {"/icon.svg", "icon.svg", "image/svg+xml"},
};

static void set_err(char *err, size_t errlen, const char *path, const char *why)
{
    if (err != NULL && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "%s: %s", path, why);
}

/* Reads the whole regular file at path into a new buffer. Returns 0, or -1
 * with err set (when it is still empty). */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        set_err(err, errlen, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > GW_WWW_FILE_MAX) {
        set_err(err, errlen, path, "not a regular file of 1 byte to 1 MiB");
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size);
    while (buf != NULL && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL || got != size) {
        set_err(err, errlen, path, buf == NULL ? "out of memory" : "short read");
        free(buf);
        return -1;
    }
    *data = buf;
    *len = size;
    return 0;
}

size_t gw_www_load(struct gw_www *w, const char *dir, char *err, size_t errlen)
{
    size_t loaded = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < GW_WWW_NFILES; i++) {
        struct gw_www_file *f = &w->files[i];
        f->path = FILES[i].path;
        f->name = FILES[i].name;
        f->ctype = FILES[i].ctype;
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : "", f->name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            set_err(err, errlen, f->name, "--www-dir is too long");
            continue;
        }
        if (read_file(path, &f->data, &f->len, err, errlen) == 0)
            loaded++;
    }
    return loaded;
}

const struct gw_www_file *gw_www_route(const struct gw_www *w, const char *path, size_t len)
{
    for (size_t i = 0; i < GW_WWW_NFILES; i++) {
        const char *p = FILES[i].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0)
            return &w->files[i];
    }
    return NULL;
}

void gw_www_free(struct gw_www *w)
{
    for (size_t i = 0; i < GW_WWW_NFILES; i++) {
        free(w->files[i].data);
        w->files[i].data = NULL;
        w->files[i].len = 0;
    }
}
