/* fuzz_broker.c -- the broker's session state machine fed by the codec.
 *
 * The input is a script: each chunk starts with one control byte whose low
 * two bits pick one of three connections and whose high bits choose an
 * action (feed bytes, drain, close and reopen, tick); the bytes that follow,
 * up to a length in the next byte, are fed to that connection. At the end
 * the broker's state is snapshotted and restored into a fresh broker, so
 * persistence sees every state the protocol could reach.
 */
#include "auth/auth.h"
#include "base/buf.h"
#include "mqtt/broker.h"

#include <stdlib.h>
#include <sodium.h>
#include <string.h>

typedef struct fake_io {
    weir_buf out;
    int closing;
    mqtt_conn *conn;
} fake_io;

static weir_buf *f_outbuf(void *io)
{
    return &((fake_io *)io)->out;
}

static void f_kick(void *io)
{
    fake_io *f = io;
    /* Pretend the peer reads everything at once, most of the time. */
    if (buf_used(&f->out) > 4096)
        buf_reset(&f->out);
}

static void f_close(void *io)
{
    ((fake_io *)io)->closing = 1;
}

static const mqtt_transport fake = {f_outbuf, f_kick, f_close};

static void reopen(mqtt_broker *b, fake_io *f, int i)
{
    if (f->conn)
        mqtt_conn_closed(f->conn);
    buf_reset(&f->out);
    f->closing = 0;
    f->conn = mqtt_conn_open(b, &fake, f, i ? "10.0.0.1:1" : "127.0.0.1:1", i != 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mqtt_broker_config cfg = {
        .max_packet_size = 4096, .max_connections = 8, .receive_maximum = 4,
        .max_queued_messages = 8, .max_queued_bytes = 1 << 16, .max_outbuf = 8192,
        .max_keepalive = 60, .max_session_expiry = 3600, .topic_alias_maximum = 4,
        .max_subscriptions = 8, .retain_available = true,
    };
    auth *a = auth_new("secret/#", true);
    /* CONNECTs with credentials run argon2id (no users: the dummy hash);
     * at the cheapest cost so that inputs stay fast. */
    auth_set_hash_cost(a, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    mqtt_broker *b = mqtt_broker_new(&cfg, a);
    fake_io io[3];
    memset(io, 0, sizeof(io));
    for (int i = 0; i < 3; i++) {
        buf_init(&io[i].out, 1 << 16);
        reopen(b, &io[i], i);
    }
    size_t pos = 0;
    while (pos + 2 <= size) {
        uint8_t ctl = data[pos], len = data[pos + 1];
        pos += 2;
        fake_io *f = &io[(ctl & 3) % 3];
        switch (ctl >> 6) {
        case 0: {
            size_t n = len < size - pos ? len : size - pos;
            if (f->conn && !f->closing)
                mqtt_conn_input(f->conn, data + pos, n);
            pos += n;
            break;
        }
        case 1:
            buf_reset(&f->out);
            if (f->conn)
                mqtt_conn_drained(f->conn);
            break;
        case 2:
            reopen(b, f, (int)(f - io));
            break;
        default:
            mqtt_broker_tick(b);
            break;
        }
        if (f->closing && f->conn) {
            mqtt_conn_closed(f->conn);
            f->conn = NULL;
        }
    }
    weir_buf snap;
    buf_init(&snap, 0);
    mqtt_broker_publish(b, "weir/fuzz", "x", 1, 1, true);
    for (int i = 0; i < 3; i++) {
        if (io[i].conn)
            mqtt_conn_closed(io[i].conn);
        buf_free(&io[i].out);
    }
    if (mqtt_broker_snapshot(b, &snap) == 0) {
        mqtt_broker *b2 = mqtt_broker_new(&cfg, a);
        if (mqtt_broker_restore(b2, buf_head(&snap), buf_used(&snap)) != 0)
            abort(); /* a snapshot we wrote must read back */
        mqtt_broker_free(b2);
    }
    buf_free(&snap);
    mqtt_broker_free(b);
    auth_free(a);
    return 0;
}
