/* opt.c: table-driven long options with environment fallbacks (opt.h). */
#include "common/opt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

#define ENV_PREFIX "CHATMI_"
#define ENV_MAX 128
#define CONFIG_FILE_MAX (64 * 1024)
#define SECRET_FILE_MAX 4096
#define FILE_SUFFIX "-file"

static void env_name(const char *name, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "%s", ENV_PREFIX);
    for (const char *p = name; *p && n + 1 < outlen; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

int cm_opt_parse_bytes(const char *s, size_t *out, char *err, size_t errlen)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {
        {"", 0},   {"b", 0},   {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},
        {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30},
    };
    const char *p = s;
    uint64_t v = 0;

    if (s == NULL || !isdigit((unsigned char)*p))
        goto bad;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].suffix) == 0) {
            if (units[i].shift > 0 && v > (SIZE_MAX >> units[i].shift))
                goto bad;
            *out = (size_t)(v << units[i].shift);
            return 0;
        }
    }
bad:
    snprintf(err, errlen, "expected a size like 65536, 64k or 1MiB, got \"%s\"", s ? s : "");
    return -1;
}

int cm_opt_parse_seconds(const char *s, double *out, char *err, size_t errlen)
{
    char *end;
    double v, scale;

    if (s == NULL || !(isdigit((unsigned char)*s) || *s == '.'))
        goto bad;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v))
        goto bad;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1;
    else if (strcmp(end, "ms") == 0)
        scale = 0.001;
    else if (strcmp(end, "m") == 0)
        scale = 60;
    else if (strcmp(end, "h") == 0)
        scale = 3600;
    else
        goto bad;
    *out = v * scale;
    return 0;
bad:
    snprintf(err, errlen, "expected a duration like 10, 2.5, 500ms, 10s or 1m, got \"%s\"", s ? s : "");
    return -1;
}

static int parse_nonneg(const char *s, const char *stop, double *out)
{
    char *end;
    if (!(isdigit((unsigned char)*s) || *s == '.'))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || end != stop || errno != 0 || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

int cm_opt_parse_rate(const char *s, struct cm_rate *out, char *err, size_t errlen)
{
    double rate, burst;
    const char *slash;

    if (s == NULL)
        goto bad;
    slash = strchr(s, '/');
    if (parse_nonneg(s, slash ? slash : s + strlen(s), &rate) < 0)
        goto bad;
    if (slash == NULL)
        burst = rate;
    else if (parse_nonneg(slash + 1, slash + 1 + strlen(slash + 1), &burst) < 0)
        goto bad;
    if (rate == 0) {
        out->per_second = 0;
        out->burst = 0;
        return 0;
    }
    if (burst < 1) {
        snprintf(err, errlen, "burst must be at least 1 when the rate is not 0, got \"%s\"", s);
        return -1;
    }
    out->per_second = rate;
    out->burst = burst;
    return 0;
bad:
    snprintf(err, errlen, "expected RATE/BURST like 20/40, got \"%s\"", s ? s : "");
    return -1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* Index of s among the '|'-separated choices, or -1. */
static int enum_index(const char *choices, const char *s)
{
    size_t slen = strlen(s);
    int idx = 0;
    for (const char *p = choices; p != NULL; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == slen && memcmp(p, s, n) == 0)
            return idx;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* The n-th choice, for cm_opt_describe. */
static void enum_name(const char *choices, int idx, char *out, size_t outlen)
{
    const char *p = choices;
    for (int i = 0; p != NULL && i < idx; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (p == NULL || idx < 0) {
        snprintf(out, outlen, "%d", idx);
        return;
    }
    const char *bar = strchr(p, '|');
    snprintf(out, outlen, "%.*s", (int)(bar ? (size_t)(bar - p) : strlen(p)), p);
}

static int bounded(const struct cm_opt *o)
{
    return !(o->min == 0 && o->max == 0);
}

/* Parses one value into o->dst; on error writes the reason (without the
 * option's name, which the caller prefixes). */
static int set_value(const struct cm_opt *o, const char *v, char *err, size_t errlen)
{
    switch (o->type) {
    case CM_OPT_STRING: {
        char *copy = strdup(v);
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        /* Not freed first: what dst held before the first parse is the
         * caller's (often a literal); cm_opt_free() releases our copy. */
        *(char **)o->dst = copy;
        return 0;
    }
    case CM_OPT_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || isspace((unsigned char)*v) ||
            (bounded(o) && (n < o->min || n > o->max))) {
            if (bounded(o))
                snprintf(err, errlen, "expected an integer from %.0f to %.0f, got \"%s\"", o->min, o->max, v);
            else
                snprintf(err, errlen, "expected an integer, got \"%s\"", v);
            return -1;
        }
        *(long *)o->dst = n;
        return 0;
    }
    case CM_OPT_BYTES: {
        size_t n;
        if (cm_opt_parse_bytes(v, &n, err, errlen) < 0)
            return -1;
        if (bounded(o) && ((double)n < o->min || (double)n > o->max)) {
            snprintf(err, errlen, "must be from %.0f to %.0f bytes, got \"%s\"", o->min, o->max, v);
            return -1;
        }
        *(size_t *)o->dst = n;
        return 0;
    }
    case CM_OPT_SECONDS: {
        double d;
        if (cm_opt_parse_seconds(v, &d, err, errlen) < 0)
            return -1;
        if (bounded(o) && (d < o->min || d > o->max)) {
            snprintf(err, errlen, "must be from %g to %g seconds, got \"%s\"", o->min, o->max, v);
            return -1;
        }
        *(double *)o->dst = d;
        return 0;
    }
    case CM_OPT_RATE:
        return cm_opt_parse_rate(v, o->dst, err, errlen);
    case CM_OPT_ENUM: {
        int idx = o->choices ? enum_index(o->choices, v) : -1;
        if (idx < 0) {
            snprintf(err, errlen, "expected one of %s, got \"%s\"", o->choices ? o->choices : "(none)", v);
            return -1;
        }
        *(int *)o->dst = idx;
        return 0;
    }
    case CM_OPT_BOOL:
        if (parse_bool(v, o->dst) < 0) {
            snprintf(err, errlen, "expected true or false (1/0, yes/no, on/off), got \"%s\"", v);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown option type");
    return -1;
}

static const char *metavar(const struct cm_opt *o)
{
    switch (o->type) {
    case CM_OPT_STRING: return "VALUE";
    case CM_OPT_INT: return "N";
    case CM_OPT_BYTES: return "SIZE";
    case CM_OPT_SECONDS: return "DURATION";
    case CM_OPT_RATE: return "RATE/BURST";
    case CM_OPT_ENUM: return o->choices ? o->choices : "VALUE";
    case CM_OPT_BOOL: return "[BOOL]";
    }
    return "VALUE";
}

static int has_file_twin(const struct cm_opt *opts, size_t nopts, const struct cm_opt *o);

static void print_help(const struct cm_opt *opts, size_t nopts, const char *usage)
{
    char env[ENV_MAX];
    printf("%s\n\nEvery option can also be set with its environment variable; the flag wins.\n\n"
           "Options:\n",
           usage ? usage : "Usage: [OPTIONS]");
    for (size_t i = 0; i < nopts; i++) {
        const struct cm_opt *o = &opts[i];
        env_name(o->name, env, sizeof(env));
        printf("  --%s %s\n      %s\n      default: %s   env: %s\n", o->name, metavar(o), o->help ? o->help : "",
               o->def_help ? o->def_help : o->def ? (o->secret ? "***" : o->def) : "none", env);
        if (has_file_twin(opts, nopts, o))
            printf("  --%s" FILE_SUFFIX " FILE\n      read --%s from FILE (keeps it off command lines and out of the "
                   "environment)\n      default: none   env: %s_FILE\n",
                   o->name, o->name, env);
    }
    printf("  --config FILE\n      settings file: CHATMI_NAME=value lines (systemd EnvironmentFile syntax);\n"
           "      environment and flags win over it; the gateway re-reads it on SIGHUP\n"
           "      default: none   env: CHATMI_CONFIG\n");
    printf("  --help\n      show this help and exit\n  --version\n      show the version and exit\n");
}

static const struct cm_opt *find_opt(const struct cm_opt *opts, size_t nopts, const char *name, size_t len)
{
    for (size_t i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* The --config path: the flag (last one wins) or CHATMI_CONFIG; NULL: none.
 * -1 when the flag has no value. */
static int config_path(int argc, char **argv, const char **path, char *err, size_t errlen)
{
    const char *e = getenv(ENV_PREFIX "CONFIG");
    *path = e != NULL && *e != '\0' ? e : NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config: missing value");
                return -1;
            }
            *path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
        }
    }
    return 0;
}

/* Reads the whole settings file into a NUL-terminated buffer (*out). */
static int config_read(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "--config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "--config: out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "--config: %s: %s", path, failed ? "read error" : "larger than 64 KiB");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static char *trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

/* Parses "CHATMI_NAME=value" lines in place (blank lines and lines starting
 * with # or ; are comments; a value may be wrapped in matching quotes) and
 * sets raw[] for each named option. Every name must be a known option's
 * variable: a typo is an error, not a silently ignored setting. */
static int config_apply(const struct cm_opt *opts, size_t nopts, const char *path, char *text, const char **raw,
                        char *from, char *err, size_t errlen)
{
    char env[ENV_MAX];
    int lineno = 0;
    char *line = text;
    while (line != NULL && *line != '\0') {
        lineno++;
        char *nl = strchr(line, '\n');
        char *end = nl != NULL ? nl : line + strlen(line);
        char *next = nl != NULL ? nl + 1 : NULL;
        char *l = trim(line, end);
        line = next;
        if (*l == '\0' || *l == '#' || *l == ';')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "--config %s:%d: expected NAME=value", path, lineno);
            return -1;
        }
        char *key = trim(l, eq);
        char *val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        size_t vlen = strlen(val);
        if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') && val[vlen - 1] == val[0]) {
            val[vlen - 1] = '\0';
            val++;
        }
        size_t k = nopts;
        for (size_t i = 0; i < nopts; i++) {
            env_name(opts[i].name, env, sizeof(env));
            if (strcmp(env, key) == 0) {
                k = i;
                break;
            }
        }
        if (k == nopts) {
            snprintf(err, errlen, "--config %s:%d: unknown setting %s", path, lineno, key);
            return -1;
        }
        raw[k] = val;
        from[k] = 'c';
    }
    return 0;
}

/* A secret string option gets a "<name>-file" twin (flag --redis-url-file,
 * env CHATMI_REDIS_URL_FILE) unless the table has an option of that name
 * already (--jwt-secret-file): the value is read from the file, so it is
 * never on a command line or in the environment. */
static int has_file_twin(const struct cm_opt *opts, size_t nopts, const struct cm_opt *o)
{
    char twin[ENV_MAX];
    if (!o->secret || o->type != CM_OPT_STRING)
        return 0;
    int n = snprintf(twin, sizeof(twin), "%s" FILE_SUFFIX, o->name);
    return n > 0 && (size_t)n < sizeof(twin) && find_opt(opts, nopts, twin, (size_t)n) == NULL;
}

/* The option whose file twin "--<name>" is (nlen bytes), or NULL. */
static const struct cm_opt *find_file_twin(const struct cm_opt *opts, size_t nopts, const char *name, size_t nlen)
{
    size_t slen = sizeof(FILE_SUFFIX) - 1;
    if (nlen <= slen || memcmp(name + nlen - slen, FILE_SUFFIX, slen) != 0)
        return NULL;
    const struct cm_opt *o = find_opt(opts, nopts, name, nlen - slen);
    return o != NULL && has_file_twin(opts, nopts, o) ? o : NULL;
}

/* Reads a secret value: at most SECRET_FILE_MAX bytes, trailing CR/LF
 * dropped, not empty, no NUL. Returns a malloc'ed string or NULL with err. */
static char *read_secret(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(SECRET_FILE_MAX + 2);
    size_t n = 0;
    while (buf != NULL && n <= SECRET_FILE_MAX) {
        ssize_t r = read(fd, buf + n, SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    fd = -1;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (n > SECRET_FILE_MAX) {
        snprintf(err, errlen, "%s is larger than %d bytes", path, SECRET_FILE_MAX);
        goto fail;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0 || memchr(buf, '\0', n) != NULL) {
        snprintf(err, errlen, "%s is empty or holds a NUL byte", path);
        goto fail;
    }
    buf[n] = '\0';
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    if (buf != NULL) {
        explicit_bzero(buf, SECRET_FILE_MAX + 2);
        free(buf);
    }
    return NULL;
}

enum cm_opt_result cm_opt_parse(const struct cm_opt *opts, size_t nopts, int argc, char **argv,
                                const char *usage, const char *version, char *err, size_t errlen)
{
    return cm_opt_parse_from(opts, nopts, argc, argv, usage, version, NULL, err, errlen);
}

enum cm_opt_result cm_opt_parse_from(const struct cm_opt *opts, size_t nopts, int argc, char **argv,
                                     const char *usage, const char *version, char *from_out, char *err,
                                     size_t errlen)
{
    /* The winning raw text of each option, chosen before anything is parsed:
     * a bad environment value overridden by a good flag is then no error, and
     * each string option is allocated once. */
    const char **raw = NULL;
    const char **file = NULL; /* a secret's file twin, when it won */
    char **secret_text = NULL; /* what was read from those files */
    char *from = NULL; /* 'd'efault, 'c'onfig file, 'e'nv, 'f'lag */
    char *cfg_text = NULL;
    enum cm_opt_result result = CM_OPT_ERROR;
    char env[ENV_MAX];
    char why[256];

    /* --help and --version win over any error elsewhere on the line. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(opts, nopts, usage);
            fflush(stdout);
            return CM_OPT_EXIT;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s\n", version ? version : "");
            fflush(stdout);
            return CM_OPT_EXIT;
        }
    }

    raw = calloc(nopts ? nopts : 1, sizeof(*raw));
    file = calloc(nopts ? nopts : 1, sizeof(*file));
    secret_text = calloc(nopts ? nopts : 1, sizeof(*secret_text));
    from = calloc(nopts ? nopts : 1, 1);
    if (raw == NULL || file == NULL || secret_text == NULL || from == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nopts; i++) {
        raw[i] = opts[i].def;
        from[i] = 'd';
    }
    const char *cfg_path;
    if (config_path(argc, argv, &cfg_path, err, errlen) < 0)
        goto out;
    if (cfg_path != NULL && (config_read(cfg_path, &cfg_text, err, errlen) < 0 ||
                             config_apply(opts, nopts, cfg_path, cfg_text, raw, from, err, errlen) < 0))
        goto out;
    for (size_t i = 0; i < nopts; i++) {
        const char *e;
        env_name(opts[i].name, env, sizeof(env));
        /* An empty variable counts as unset: container environments often
         * pass every known variable, set or not. */
        if ((e = getenv(env)) != NULL && *e != '\0')
            raw[i] = e, from[i] = 'e';
        if (has_file_twin(opts, nopts, &opts[i])) {
            char fenv[ENV_MAX + 8];
            snprintf(fenv, sizeof(fenv), "%s_FILE", env);
            if ((e = getenv(fenv)) != NULL && *e != '\0') {
                if (from[i] == 'e') {
                    snprintf(err, errlen, "%s and %s: give only one", env, fenv);
                    goto out;
                }
                file[i] = e, from[i] = 'e';
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            snprintf(err, errlen, "unexpected argument \"%s\" (options are --name value)", a);
            goto out;
        }
        if (strcmp(a, "--config") == 0) {
            i++; /* read above */
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct cm_opt *o = find_opt(opts, nopts, name, nlen);
        const struct cm_opt *twin_of = o == NULL ? find_file_twin(opts, nopts, name, nlen) : NULL;
        if (o == NULL && twin_of == NULL) {
            snprintf(err, errlen, "unknown option --%.*s (see --help)", (int)nlen, name);
            goto out;
        }
        if (twin_of != NULL) {
            size_t k = (size_t)(twin_of - opts);
            if (eq == NULL && i + 1 >= argc) {
                snprintf(err, errlen, "--%.*s: missing value", (int)nlen, name);
                goto out;
            }
            if (from[k] == 'f' && file[k] == NULL) {
                snprintf(err, errlen, "--%s and --%s" FILE_SUFFIX ": give only one", twin_of->name, twin_of->name);
                goto out;
            }
            file[k] = eq != NULL ? eq + 1 : argv[++i];
            from[k] = 'f';
            continue;
        }
        size_t k = (size_t)(o - opts);
        if (from[k] == 'f' && file[k] != NULL) {
            snprintf(err, errlen, "--%s and --%s" FILE_SUFFIX ": give only one", o->name, o->name);
            goto out;
        }
        if (eq != NULL)
            raw[k] = eq + 1;
        else if (o->type == CM_OPT_BOOL)
            raw[k] = "true"; /* never takes the next argument: "--flag x" stays unambiguous */
        else if (i + 1 < argc)
            raw[k] = argv[++i];
        else {
            snprintf(err, errlen, "--%s: missing value", o->name);
            goto out;
        }
        file[k] = NULL; /* a flag wins over a file named in the environment */
        from[k] = 'f';
    }
    for (size_t i = 0; i < nopts; i++) {
        if (file[i] == NULL)
            continue;
        secret_text[i] = read_secret(file[i], why, sizeof(why));
        if (secret_text[i] == NULL) {
            snprintf(err, errlen, "--%s" FILE_SUFFIX ": %s", opts[i].name, why);
            goto out;
        }
        raw[i] = secret_text[i];
    }
    for (size_t i = 0; i < nopts; i++) {
        if (raw[i] == NULL)
            continue;
        if (set_value(&opts[i], raw[i], why, sizeof(why)) < 0) {
            env_name(opts[i].name, env, sizeof(env));
            if (from[i] == 'e')
                snprintf(err, errlen, "%s (--%s): %s", env, opts[i].name, why);
            else if (from[i] == 'c')
                snprintf(err, errlen, "--config: %s (--%s): %s", env, opts[i].name, why);
            else if (from[i] == 'd')
                snprintf(err, errlen, "--%s: bad built-in default: %s", opts[i].name, why);
            else
                snprintf(err, errlen, "--%s: %s", opts[i].name, why);
            goto out;
        }
    }
    result = CM_OPT_OK;
    if (from_out != NULL)
        memcpy(from_out, from, nopts);
out:
    for (size_t i = 0; secret_text != NULL && i < nopts; i++)
        if (secret_text[i] != NULL) {
            explicit_bzero(secret_text[i], strlen(secret_text[i]));
            free(secret_text[i]);
        }
    free(secret_text);
    free(file);
    free(raw);
    free(from);
    free(cfg_text);
    return result;
}

struct sink {
    char *p;
    size_t len, cap;
};

static void sink_add(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sink_add(struct sink *s, const char *fmt, ...)
{
    if (s->cap == 0 || s->len >= s->cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len = s->len + (size_t)n < s->cap - 1 ? s->len + (size_t)n : s->cap - 1;
}

const char *cm_opt_source_name(char from)
{
    switch (from) {
    case CM_SRC_FILE: return "file";
    case CM_SRC_ENV: return "env";
    case CM_SRC_FLAG: return "flag";
    default: return "default";
    }
}

void cm_opt_mask_url(const char *url, char *buf, size_t buflen)
{
    const char *scheme = strstr(url, "://");
    const char *info = scheme ? scheme + 3 : url;
    const char *at = strrchr(info, '@');
    if (at == NULL) {
        snprintf(buf, buflen, "%s", url);
        return;
    }
    const char *colon = memchr(info, ':', (size_t)(at - info));
    if (colon == NULL)
        snprintf(buf, buflen, "%.*s***%s", (int)(info - url), url, at);
    else
        snprintf(buf, buflen, "%.*s:***%s", (int)(colon - url), url, at);
}

void cm_opt_value(const struct cm_opt *o, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    if (o->secret == CM_OPT_SECRET) {
        int set = o->type == CM_OPT_STRING ? *(char **)o->dst != NULL : 1;
        snprintf(buf, buflen, "%s", set ? "***" : "(unset)");
        return;
    }
    switch (o->type) {
    case CM_OPT_STRING: {
        const char *v = *(char **)o->dst;
        if (v == NULL) /* what unset means ("off", "any"), when the table says */
            snprintf(buf, buflen, "%s", o->def_help ? o->def_help : "(unset)");
        else if (o->secret == CM_OPT_SECRET_URL)
            cm_opt_mask_url(v, buf, buflen);
        else
            snprintf(buf, buflen, "%s", v);
        break;
    }
    case CM_OPT_INT: snprintf(buf, buflen, "%ld", *(long *)o->dst); break;
    case CM_OPT_BYTES: snprintf(buf, buflen, "%zu", *(size_t *)o->dst); break;
    case CM_OPT_SECONDS: snprintf(buf, buflen, "%gs", *(double *)o->dst); break;
    case CM_OPT_RATE: {
        const struct cm_rate *r = o->dst;
        if (r->per_second == 0)
            snprintf(buf, buflen, "off");
        else
            snprintf(buf, buflen, "%g/%g", r->per_second, r->burst);
        break;
    }
    case CM_OPT_ENUM: enum_name(o->choices ? o->choices : "", *(int *)o->dst, buf, buflen); break;
    case CM_OPT_BOOL: snprintf(buf, buflen, "%s", *(int *)o->dst ? "true" : "false"); break;
    }
}

void cm_opt_describe(const struct cm_opt *opts, size_t nopts, char *buf, size_t buflen)
{
    struct sink s = {buf, 0, buflen};
    if (buflen > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < nopts; i++) {
        char value[512];
        cm_opt_value(&opts[i], value, sizeof(value));
        sink_add(&s, "%s%s=%s", i ? " " : "", opts[i].name, value);
    }
}

#define CONFIG_FIELDS_MAX 64
#define CONFIG_VALUE_MAX 256

void cm_opt_log_config(const struct cm_opt *opts, size_t nopts, const char *from, const char *event,
                       const struct cm_log_field *extra, size_t nextra)
{
    /* One field per option, then the sources grouped ("flag: a b; env: c"),
     * then the extra fields: values live in one block owned here. */
    if (nopts > CONFIG_FIELDS_MAX - 1)
        nopts = CONFIG_FIELDS_MAX - 1;
    if (nextra > CONFIG_FIELDS_MAX - 1 - nopts)
        nextra = CONFIG_FIELDS_MAX - 1 - nopts;
    char(*values)[CONFIG_VALUE_MAX] = calloc(nopts ? nopts : 1, CONFIG_VALUE_MAX);
    struct cm_log_field fields[CONFIG_FIELDS_MAX];
    char sources[1024];
    struct sink s = {sources, 0, sizeof(sources)};
    sources[0] = '\0';
    if (values == NULL) {
        cm_log(CM_LOG_ERROR, event, "out of memory describing the configuration");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < nopts; i++) {
        cm_opt_value(&opts[i], values[i], CONFIG_VALUE_MAX);
        fields[n].key = opts[i].name;
        fields[n++].value = values[i];
    }
    static const char order[] = {CM_SRC_FLAG, CM_SRC_ENV, CM_SRC_FILE};
    for (size_t k = 0; k < sizeof(order); k++) {
        int any = 0;
        for (size_t i = 0; from != NULL && i < nopts; i++) {
            if (from[i] != order[k])
                continue;
            sink_add(&s, "%s%s", any ? " " : s.len ? "; " : "", "");
            if (!any)
                sink_add(&s, "%s: ", cm_opt_source_name(order[k]));
            sink_add(&s, "%s", opts[i].name);
            any = 1;
        }
    }
    sink_add(&s, "%sthe rest: default", s.len ? "; " : "");
    fields[n].key = "sources";
    fields[n++].value = sources;
    for (size_t i = 0; i < nextra; i++)
        fields[n++] = extra[i];
    cm_log_fields(CM_LOG_INFO, event, fields, n, "effective configuration (%zu options)", nopts);
    free(values);
}

void cm_opt_free(const struct cm_opt *opts, size_t nopts)
{
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].type == CM_OPT_STRING && opts[i].dst != NULL) {
            char **dst = opts[i].dst;
            free(*dst);
            *dst = NULL;
        }
    }
}
