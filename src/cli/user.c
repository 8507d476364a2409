/* user.c -- `weir user`: users, API tokens and grants, offline on a data
 * directory.
 *
 *   weir user add NAME --role ROLE [--device] [--password-stdin]
 *   weir user passwd NAME [--password-stdin]
 *   weir user del NAME
 *   weir user list
 *   weir user token NAME [--expires DURATION] [--description TEXT]
 *   weir user revoke TOKEN_ID
 *   weir user grant  (--user NAME | --role ROLE) stream|topic PATTERN read|write|readwrite
 *   weir user ungrant (--user NAME | --role ROLE) stream|topic PATTERN
 *   every command takes --data DIR (default ./weir-data)
 *
 * It writes the catalog directly (SQLite in WAL mode lets it run next to a
 * live `weir serve`, which notices the change within a tick through
 * PRAGMA data_version, reloads users and closes connections whose
 * credentials went). The HTTP API (docs/api.md) does the same remotely.
 * Passwords come from stdin (--password-stdin, first line) or from the
 * terminal without echo; with neither, one is generated and printed once.
 * Tokens are printed once; only their hash is stored. Every change is
 * audited through the catalog's audit outbox, which the node moves into the
 * `$audit` stream.
 */
#include "auth/audit.h"
#include "auth/auth.h"
#include "base/config.h"
#include "base/err.h"
#include "base/wlog.h"
#include "catalog/catalog.h"
#include "cli/cli.h"

#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weir user add NAME --role ROLE [--device] [--password-stdin] [--data DIR]\n"
            "       weir user passwd NAME [--password-stdin] [--data DIR]\n"
            "       weir user del NAME [--data DIR]\n"
            "       weir user list [--data DIR]\n"
            "       weir user token NAME [--expires DURATION] [--description TEXT] [--data DIR]\n"
            "       weir user revoke TOKEN_ID [--data DIR]\n"
            "       weir user grant (--user NAME | --role ROLE) stream|topic PATTERN "
            "read|write|readwrite\n"
            "       weir user ungrant (--user NAME | --role ROLE) stream|topic PATTERN\n"
            "roles: admin manager operator viewer supplier device (docs/security.md)\n");
}

typedef struct opts {
    const char *data;
    const char *role;
    const char *user;
    const char *description;
    const char *expires;
    bool device;
    bool password_stdin;
    const char *pos[4];
    int n_pos;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->data = "./weir-data";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--data")          ? &o->data
                            : !strcmp(a, "--role")        ? &o->role
                            : !strcmp(a, "--user")        ? &o->user
                            : !strcmp(a, "--description") ? &o->description
                            : !strcmp(a, "--expires")     ? &o->expires
                                                          : NULL;
        if (slot) {
            if (i + 1 >= argc)
                return -1;
            *slot = argv[++i];
        } else if (!strcmp(a, "--device")) {
            o->device = true;
        } else if (!strcmp(a, "--password-stdin")) {
            o->password_stdin = true;
        } else if (a[0] == '-' && a[1]) {
            return -1;
        } else if (o->n_pos < 4) {
            o->pos[o->n_pos++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads a password into buf: stdin's first line, the terminal without
 * echo, or a generated one (then *generated). */
static int read_password(const opts *o, char *buf, size_t n, bool *generated)
{
    *generated = false;
    if (o->password_stdin || isatty(STDIN_FILENO)) {
        struct termios old, quiet;
        bool tty = !o->password_stdin && tcgetattr(STDIN_FILENO, &old) == 0;
        if (tty) {
            fprintf(stderr, "password: ");
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        char *line = fgets(buf, (int)n, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSANOW, &old);
            fprintf(stderr, "\n");
        }
        if (!line)
            return WEIR_EINVAL;
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strlen(buf) < 8) {
            fprintf(stderr, "weir user: a password needs at least 8 bytes\n");
            return WEIR_EINVAL;
        }
        return WEIR_OK;
    }
    uint8_t b[18];
    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(buf, n, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *generated = true;
    return WEIR_OK;
}

/* The audit sink of the CLI: the catalog's outbox. */
static void outbox_sink(void *ctx, const char *json, size_t len)
{
    (void)len;
    catalog_audit_outbox_put(ctx, json);
}

static const char *who_am_i(char *buf, size_t n)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(buf, n, "cli:%s", pw ? pw->pw_name : "?");
    return buf;
}

static int print_user(void *arg, const catalog_user *u)
{
    (void)arg;
    printf("%-24s %-7s %-9s %-9s %s%s\n", u->name, u->kind, u->role,
           u->password_hash ? "password" : "-", u->created_at, u->disabled ? "  disabled" : "");
    return 0;
}

static int print_token(void *arg, const catalog_token *t)
{
    (void)arg;
    char exp[32] = "never";
    if (t->expires_at) {
        time_t e = (time_t)t->expires_at;
        struct tm tm;
        gmtime_r(&e, &tm);
        strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    printf("  token %s  user=%s  expires=%s%s  %s\n", t->id, t->user, exp,
           t->revoked ? "  REVOKED" : "", t->description);
    return 0;
}

static int print_grant(void *arg, const catalog_grant *g)
{
    (void)arg;
    printf("  grant %s:%s %s %s %s\n", g->subject_kind, g->subject, g->resource_kind, g->pattern,
           g->access);
    return 0;
}

static int cmd_password(catalog *cat, audit *au, const char *who, const opts *o, bool add)
{
    const char *name = o->pos[0];
    if (!auth_name_valid(name)) {
        fprintf(stderr, "weir user: a name is 1 to 64 of [A-Za-z0-9_.@-]\n");
        return 2;
    }
    if (add && auth_role_parse(o->role) == AUTH_ROLE_NONE) {
        fprintf(stderr, "weir user: --role must be admin, manager, operator, viewer, supplier "
                        "or device\n");
        return 2;
    }
    char pw[1100], hash[128];
    bool generated;
    if (read_password(o, pw, sizeof(pw), &generated))
        return 2;
    int rc = auth_password_hash(pw, strlen(pw), hash);
    if (!rc)
        rc = add ? catalog_user_add(cat, name,
                                    o->device || !strcmp(o->role, "device") ? "device" : "user",
                                    o->role, hash)
                 : catalog_user_set_password(cat, name, hash);
    sodium_memzero(hash, sizeof(hash));
    if (rc) {
        sodium_memzero(pw, sizeof(pw));
        fprintf(stderr, "weir user: %s\n",
                rc == WEIR_EEXIST      ? "a user with that name exists"
                : rc == WEIR_ENOTFOUND ? "no such user"
                                       : weir_strerror(rc));
        return 1;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), add ? "role=%s" : "password changed", o->role);
    audit_log(au, who, "cli", "cli", add ? "user.create" : "user.password", name, true, detail);
    if (generated)
        printf("%s password (shown once): %s\n", name, pw);
    else
        printf("%s: %s\n", name, add ? "created" : "password changed");
    sodium_memzero(pw, sizeof(pw));
    return 0;
}

static int cmd_token(catalog *cat, audit *au, const char *who, const opts *o)
{
    long long expires_at = 0;
    if (o->expires) {
        int64_t ms;
        if (config_parse_duration_ms(o->expires, &ms) || ms < 1000) {
            fprintf(stderr, "weir user: --expires wants a duration such as 30d or 12h\n");
            return 2;
        }
        expires_at = (long long)time(NULL) + ms / 1000;
    }
    char token[AUTH_TOKEN_LEN + 1], id[17], hash[65];
    auth_token_new(token, id, hash);
    int rc = catalog_token_add(cat, id, o->pos[0], hash, o->description, expires_at);
    if (rc) {
        fprintf(stderr, "weir user: %s\n", rc == WEIR_EINVAL ? "no such user" : weir_strerror(rc));
        return 1;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "id=%s expires_at=%lld", id, expires_at);
    audit_log(au, who, "cli", "cli", "token.create", o->pos[0], true, detail);
    printf("%s\n", token);
    fprintf(stderr, "token id %s for %s; shown once, store it now\n", id, o->pos[0]);
    sodium_memzero(token, sizeof(token));
    return 0;
}

static int cmd_grant(catalog *cat, audit *au, const char *who, const opts *o, bool put)
{
    catalog_grant g = {.subject_kind = o->user ? "user" : "role",
                       .subject = o->user ? o->user : o->role,
                       .resource_kind = o->pos[0],
                       .pattern = o->pos[1],
                       .access = put ? o->pos[2] : NULL};
    if (!g.subject || (o->user && o->role) || o->n_pos != (put ? 3 : 2) ||
        (strcmp(g.resource_kind, "stream") && strcmp(g.resource_kind, "topic")) ||
        (put && strcmp(g.access, "read") && strcmp(g.access, "write") &&
         strcmp(g.access, "readwrite")) ||
        (o->role && auth_role_parse(o->role) == AUTH_ROLE_NONE)) {
        usage(stderr);
        return 2;
    }
    int rc = put ? catalog_grant_put(cat, &g) : catalog_grant_delete(cat, &g);
    if (rc) {
        fprintf(stderr, "weir user: %s\n",
                rc == WEIR_ENOTFOUND ? "no such grant" : weir_strerror(rc));
        return 1;
    }
    char target[200], detail[300];
    snprintf(target, sizeof(target), "%s:%s", g.subject_kind, g.subject);
    snprintf(detail, sizeof(detail), "%s %s %s", g.resource_kind, g.pattern, put ? g.access : "");
    audit_log(au, who, "cli", "cli", put ? "grant.put" : "grant.delete", target, true, detail);
    return 0;
}

int cli_user(int argc, char **argv)
{
    opts o;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    static const struct {
        const char *name;
        int npos;
    } arity[] = {{"add", 1},   {"passwd", 1}, {"del", 1},    {"list", 0},
                 {"token", 1}, {"revoke", 1}, {"grant", -1}, {"ungrant", -1}};
    int want = -2;
    for (size_t i = 0; i < sizeof(arity) / sizeof(arity[0]); i++)
        if (!strcmp(cmd, arity[i].name))
            want = arity[i].npos;
    if (want == -2 || (want >= 0 && o.n_pos != want)) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    wlog_set_level(WLOG_WARN); /* audit lines are for the node's log */
    catalog *cat = NULL;
    if (catalog_open(o.data, &cat)) {
        fprintf(stderr, "weir user: cannot open the catalog in %s\n", o.data);
        return 1;
    }
    audit *au = audit_new(outbox_sink, cat);
    char whobuf[96];
    const char *who = who_am_i(whobuf, sizeof(whobuf));
    int status = 0;
    if (!au) {
        status = 1;
    } else if (!strcmp(cmd, "add") || !strcmp(cmd, "passwd")) {
        status = cmd_password(cat, au, who, &o, !strcmp(cmd, "add"));
    } else if (!strcmp(cmd, "del")) {
        int rc = catalog_user_delete(cat, o.pos[0]);
        if (rc) {
            fprintf(stderr, "weir user: %s\n",
                    rc == WEIR_ENOTFOUND ? "no such user" : weir_strerror(rc));
            status = 1;
        } else {
            audit_log(au, who, "cli", "cli", "user.delete", o.pos[0], true, NULL);
        }
    } else if (!strcmp(cmd, "list")) {
        status = catalog_user_list(cat, print_user, NULL) ||
                 catalog_token_list(cat, print_token, NULL) ||
                 catalog_grant_list(cat, print_grant, NULL);
    } else if (!strcmp(cmd, "token")) {
        status = cmd_token(cat, au, who, &o);
    } else if (!strcmp(cmd, "revoke")) {
        int rc = catalog_token_revoke(cat, o.pos[0]);
        if (rc) {
            fprintf(stderr, "weir user: %s\n",
                    rc == WEIR_ENOTFOUND ? "no such token" : weir_strerror(rc));
            status = 1;
        } else {
            char detail[40];
            snprintf(detail, sizeof(detail), "id=%s", o.pos[0]);
            audit_log(au, who, "cli", "cli", "token.revoke", o.pos[0], true, detail);
        }
    } else {
        status = cmd_grant(cat, au, who, &o, !strcmp(cmd, "grant"));
    }
    audit_free(au);
    catalog_close(cat);
    return status;
}
