/* fuzz_auth_connect.c -- the MQTT CONNECT credentials path: a CONNECT built
 * from the input (version, client id, user name, password -- sometimes the
 * real ones or a real token, so that success is reached too -- and
 * optionally a certificate identity) goes through a broker with users, then
 * the rest of the input is fed as packets that the identity's ACL checks
 * (PUBLISH, SUBSCRIBE). Checks: no crash, no leak, and that a connection
 * without valid credentials is never accepted. */
#include "auth_fixture.h"
#include "base/buf.h"
#include "mqtt/broker.h"

#include <stdint.h>

typedef struct fake_io {
    weir_buf out;
    int closing;
} fake_io;

static weir_buf *f_outbuf(void *io)
{
    return &((fake_io *)io)->out;
}

static void f_kick(void *io)
{
    (void)io;
}

static void f_close(void *io)
{
    ((fake_io *)io)->closing = 1;
}

static const mqtt_transport fake = {f_outbuf, f_kick, f_close};

static void put_str(weir_buf *b, const uint8_t *s, size_t n)
{
    uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    buf_append(b, len, 2);
    buf_append(b, s, n);
}

/* Takes a length-prefixed piece of the input (one byte of length). */
static const uint8_t *take(const uint8_t **d, size_t *n, size_t *len)
{
    if (!*n)
        return NULL;
    size_t l = **d;
    (*d)++;
    (*n)--;
    if (l > *n)
        l = *n;
    const uint8_t *p = *d;
    *d += l;
    *n -= l;
    *len = l;
    return p;
}

static bool is(const uint8_t *p, size_t n, const char *s)
{
    return p && n == strlen(s) && !memcmp(p, s, n);
}

/* Whether the CONNECT carried credentials that should be accepted. */
static bool legit(uint8_t ctl, const uint8_t *user, size_t un, const uint8_t *pw, size_t pn,
                  const char *cert)
{
    if (ctl & 0x10)
        return !strcmp(cert, "fz") || !strcmp(cert, "dv");
    if ((!user || un == 0) && !pw)           /* an empty user name counts as none */
        return (ctl & 0x40) && (ctl & 0x20); /* anonymous, on loopback */
    if (is(pw, pn, fixture_token))
        return !user || un == 0 || is(user, un, "fz");
    return (is(user, un, "fz") && is(pw, pn, "fz-password")) ||
           (is(user, un, "dv") && is(pw, pn, "dv-password"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    static const uint8_t *known_pw[] = {(const uint8_t *)"fz-password",
                                        (const uint8_t *)"dv-password"};
    auth *a = fixture_auth(ctl & 0x40);
    mqtt_broker_config cfg = {
        .max_packet_size = 4096,
        .max_connections = 8,
        .receive_maximum = 4,
        .max_queued_messages = 8,
        .max_queued_bytes = 1 << 16,
        .max_outbuf = 8192,
        .max_keepalive = 60,
        .max_session_expiry = 3600,
        .topic_alias_maximum = 4,
        .max_subscriptions = 8,
        .retain_available = true,
    };
    mqtt_broker *b = mqtt_broker_new(&cfg, a);
    fake_io io = {.closing = 0};
    buf_init(&io.out, 1 << 16);
    mqtt_conn *c = mqtt_conn_open(b, &fake, &io, "10.9.8.7:1", ctl & 0x20);
    char cert[300] = "";
    if (ctl & 0x10) {
        size_t n = 0;
        const uint8_t *cn = take(&data, &size, &n);
        snprintf(cert, sizeof(cert), "%.*s", (int)n, cn ? (const char *)cn : "");
        if (ctl & 0x08)
            snprintf(cert, sizeof(cert), "dv");
        mqtt_conn_set_cert_identity(c, cert);
    }
    /* The CONNECT. */
    size_t idn = 0, un = 0, pn = 0;
    const uint8_t *id = take(&data, &size, &idn);
    const uint8_t *user = take(&data, &size, &un);
    const uint8_t *pw = take(&data, &size, &pn);
    if (ctl & 0x04) { /* the right password or a real token */
        bool tok = ctl & 0x02;
        pw = tok ? (const uint8_t *)fixture_token : known_pw[ctl & 1];
        pn = strlen((const char *)pw);
        if (!tok) {
            user = (const uint8_t *)((ctl & 1) ? "dv" : "fz");
            un = 2;
        }
    }
    bool v5 = ctl & 0x80;
    weir_buf body;
    buf_init(&body, 0);
    static const uint8_t name_mqtt[] = {0, 4, 'M', 'Q', 'T', 'T'};
    uint8_t flags = 0x02 | (user ? 0x80 : 0) | (pw ? 0x40 : 0);
    uint8_t hdr[4] = {v5 ? 5 : 4, flags, 0, 30};
    buf_append(&body, name_mqtt, sizeof(name_mqtt));
    buf_append(&body, hdr, 4);
    if (v5)
        buf_append(&body, "", 1); /* no properties */
    put_str(&body, id ? id : (const uint8_t *)"", idn);
    if (user)
        put_str(&body, user, un);
    if (pw)
        put_str(&body, pw, pn);
    weir_buf pkt;
    buf_init(&pkt, 0);
    size_t rl = buf_used(&body);
    uint8_t fh[5] = {0x10};
    size_t fl = 1;
    do {
        uint8_t byte = rl & 0x7f;
        rl >>= 7;
        fh[fl++] = byte | (rl ? 0x80 : 0);
    } while (rl && fl < 5);
    buf_append(&pkt, fh, fl);
    buf_append(&pkt, buf_head(&body), buf_used(&body));
    mqtt_conn_input(c, buf_head(&pkt), buf_used(&pkt));
    const uint8_t *out = buf_head(&io.out);
    /* Nothing but valid credentials (or anonymous on loopback) is let in. */
    bool accepted = buf_used(&io.out) >= 4 && out[0] == 0x20 && out[3] == 0;
    if (accepted && !legit(ctl, user, un, pw, pn, cert))
        abort();
    /* The rest: packets checked against the identity's ACL. */
    if (!io.closing && size)
        mqtt_conn_input(c, data, size);
    mqtt_conn_closed(c);
    buf_free(&pkt);
    buf_free(&body);
    buf_free(&io.out);
    mqtt_broker_free(b);
    auth_free(a);
    return 0;
}
