/* test_www.c: the browser client's files: only the fixed list is routed,
 * byte for byte (no traversal, no decoding, no prefix matches), with the
 * right Content-Type; files that cannot be served are left unloaded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/www.h"

TestSuite(route, .timeout = 20);
TestSuite(load, .timeout = 20);

static const struct gw_www_file *route(const struct gw_www *w, const char *path)
{
    return gw_www_route(w, path, strlen(path));
}

Test(route, exact_paths_only)
{
    struct gw_www w;
    memset(&w, 0, sizeof(w));
    const char *ok[][2] = {{"/", "index.html"}, {"/app.js", "app.js"}, {"/style.css", "style.css"},
                           {"/icon.svg", "icon.svg"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const struct gw_www_file *f = route(&w, ok[i][0]);
        cr_assert_not_null(f, "%s not routed", ok[i][0]);
        cr_assert_eq(f->data, NULL, "nothing loaded yet");
    }
    const char *bad[] = {"",           "/index.html",      "/app.js/",      "/app.jsx",     "/app",
                         "//app.js",   "/./app.js",        "/../app.js",    "/%61pp.js",    "/APP.JS",
                         "/www/app.js", "/app.js%00",      "/style.css.map", "/..",         "/icon.svg/..",
                         "app.js",     "/../../etc/passwd", "/%2e%2e/app.js"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_null(route(&w, bad[i]), "%s must not be routed", bad[i]);
    /* a length that stops inside the path: only those bytes count */
    cr_assert_not_null(gw_www_route(&w, "/app.js-and-more", 7));
    cr_assert_null(gw_www_route(&w, "/app.js", 6));
}

/* A temporary --www-dir. */
static char dir[64];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/chatmi-www.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void put(const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void rm_tmp(void)
{
    const char *names[] = {"index.html", "app.js", "style.css", "icon.svg", "secret"};
    char path[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
        rmdir(path);
    }
    rmdir(dir);
}

Test(load, every_file_with_its_type, .init = mkdir_tmp, .fini = rm_tmp)
{
    put("index.html", "<!doctype html>", 15);
    put("app.js", "'use strict';", 13);
    put("style.css", "body{}", 6);
    put("icon.svg", "<svg/>", 6);
    put("secret", "not served", 10);
    struct gw_www w;
    char err[256];
    cr_assert_eq(gw_www_load(&w, dir, err, sizeof(err)), GW_WWW_NFILES, "%s", err);
    cr_assert_str_empty(err);
    const struct gw_www_file *f = route(&w, "/");
    cr_assert_eq(f->len, 15);
    cr_assert_eq(memcmp(f->data, "<!doctype html>", 15), 0);
    cr_assert_str_eq(f->ctype, "text/html; charset=utf-8");
    cr_assert_str_eq(route(&w, "/app.js")->ctype, "text/javascript; charset=utf-8");
    cr_assert_eq(memcmp(route(&w, "/app.js")->data, "'use strict';", 13), 0);
    cr_assert_str_eq(route(&w, "/style.css")->ctype, "text/css; charset=utf-8");
    cr_assert_str_eq(route(&w, "/icon.svg")->ctype, "image/svg+xml");
    cr_assert_null(route(&w, "/secret"), "a file in the directory is not served for being there");
    gw_www_free(&w);
    cr_assert_null(route(&w, "/")->data);
}

Test(load, missing_empty_and_odd_files_stay_unloaded, .init = mkdir_tmp, .fini = rm_tmp)
{
    put("index.html", "<!doctype html>", 15);
    put("app.js", "", 0); /* empty */
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/style.css", dir);
    cr_assert_eq(mkdir(sub, 0700), 0); /* a directory, not a file */
    /* icon.svg: missing */
    struct gw_www w;
    char err[256];
    cr_assert_eq(gw_www_load(&w, dir, err, sizeof(err)), 1);
    cr_assert(strstr(err, "app.js") != NULL, "the first problem is named: %s", err);
    cr_assert_not_null(route(&w, "/")->data);
    cr_assert_null(route(&w, "/app.js")->data);
    cr_assert_null(route(&w, "/style.css")->data);
    cr_assert_null(route(&w, "/icon.svg")->data);
    gw_www_free(&w);
}

Test(load, too_large_is_refused, .init = mkdir_tmp, .fini = rm_tmp)
{
    size_t big = GW_WWW_FILE_MAX + 1;
    char *text = malloc(big);
    cr_assert_not_null(text);
    memset(text, 'x', big);
    put("app.js", text, big);
    put("style.css", text, big - 1); /* exactly the limit: fine */
    free(text);
    struct gw_www w;
    char err[256];
    cr_assert_eq(gw_www_load(&w, dir, err, sizeof(err)), 1);
    cr_assert_null(route(&w, "/app.js")->data);
    cr_assert_eq(route(&w, "/style.css")->len, GW_WWW_FILE_MAX);
    gw_www_free(&w);
}

Test(load, no_directory)
{
    struct gw_www w;
    char err[256];
    cr_assert_eq(gw_www_load(&w, "/nonexistent/chatmi-www", err, sizeof(err)), 0);
    cr_assert(strstr(err, "/nonexistent/chatmi-www/index.html") != NULL, "%s", err);
    cr_assert_eq(gw_www_load(&w, NULL, NULL, 0), 0, "no directory and no error buffer: nothing loaded");
    gw_www_free(&w);
}
