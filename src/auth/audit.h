/* audit.h -- the audit trail: who did what, when, from where, and whether
 * it was allowed.
 *
 * Every login, failed login and change to users, roles, grants, tokens,
 * streams and rules calls audit_log once. An entry is one JSON object
 *
 *   {"at": "2026-11-21T12:00:00.000Z", "who": "alice", "from": "127.0.0.1:5000",
 *    "door": "http", "action": "user.create", "target": "bob", "ok": true,
 *    "detail": "role=viewer"}
 *
 * handed to a sink: in a running node, the append-only `$audit` system
 * stream (readable by admins only, through the stream records API); in the
 * `weir user` CLI, the catalog's audit_outbox, which the node moves into the
 * stream. Each entry is also written to the log at info level (module
 * "audit"). Callers never pass secrets: passwords and tokens are not
 * arguments here.
 *
 * Actions are "<object>.<verb>": login, login.failed, logout, user.create,
 * user.delete, user.password, user.role, token.create, token.revoke,
 * grant.put, grant.delete, stream.create, stream.delete, rule.create,
 * rule.update, rule.delete, rule.start, rule.stop.
 */
#ifndef WEIR_AUTH_AUDIT_H
#define WEIR_AUTH_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct audit audit;

/* Receives one entry as compact JSON (NUL-terminated, len excludes it). */
typedef void (*audit_sink_fn)(void *ctx, const char *json, size_t len);

audit *audit_new(audit_sink_fn sink, void *ctx);
void audit_free(audit *au);
/* Entries written so far (for metrics). */
unsigned long long audit_count(const audit *au);

/* Records one event. au may be NULL (log only). who NULL or "" is written
 * as "anonymous"; from, door, target and detail may be NULL. */
void audit_log(audit *au, const char *who, const char *from, const char *door, const char *action,
               const char *target, bool ok, const char *detail);

#endif
