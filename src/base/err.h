/* err.h -- the one error enum of weir.
 *
 * Every fallible function in weir returns 0 (WEIR_OK) on success or a
 * negative weir_err. The names and messages come from one X-macro so that a
 * code, its name and its text never drift apart (the libuv UV_ERRNO_MAP
 * habit). Doors translate a weir_err for their protocol in exactly one place:
 * MQTT reason codes in mqtt/reason.c, HTTP statuses in http/status.c.
 *
 * WEIR_EAGAIN means "not finished, call again when more input or capacity is
 * there" and is not a failure.
 */
#ifndef WEIR_BASE_ERR_H
#define WEIR_BASE_ERR_H

#define WEIR_ERR_MAP(X)                                                        \
    X(EAGAIN, "not finished; call again when more input is available")         \
    X(ENOMEM, "out of memory")                                                 \
    X(EINVAL, "invalid argument")                                              \
    X(EMALFORMED, "malformed input")                                           \
    X(EPROTO, "protocol violation")                                            \
    X(EVERSION, "unsupported protocol version")                                \
    X(ETOOBIG, "input larger than the configured maximum")                     \
    X(ETOPIC, "invalid topic name or filter")                                  \
    X(EUTF8, "invalid UTF-8")                                                  \
    X(ECLIENTID, "client identifier not valid")                                \
    X(EDENIED, "not authorized")                                               \
    X(EAUTH, "bad user name or password")                                      \
    X(EQUOTA, "quota exceeded")                                                \
    X(EFULL, "queue or buffer full")                                           \
    X(EBUSY, "server busy")                                                    \
    X(ETIMEDOUT, "timed out")                                                  \
    X(ENOTFOUND, "not found")                                                  \
    X(EEXIST, "already exists")                                                \
    X(EIO, "input/output error")                                               \
    X(ECORRUPT, "corrupt data")                                                \
    X(ESHUTDOWN, "shutting down")                                              \
    X(ETAKEOVER, "session taken over by another connection")                   \
    X(EUNSUPPORTED, "not supported")                                           \
    X(EINTERNAL, "internal error")

typedef enum weir_err {
    WEIR_OK = 0,
#define WEIR__ERR_ENUM(name, msg) WEIR_##name,
    WEIR__ERR_FIRST = -1000,
    WEIR_ERR_MAP(WEIR__ERR_ENUM)
#undef WEIR__ERR_ENUM
    WEIR__ERR_LAST
} weir_err;

/* The symbolic name ("EPROTO") of an error code; "OK" for 0 and "EUNKNOWN"
 * for anything outside the map. Never returns NULL. */
const char *weir_err_name(int err);

/* The human message of an error code. Never returns NULL. */
const char *weir_strerror(int err);

#endif
