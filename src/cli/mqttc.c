/* mqttc.c -- see mqttc.h. */
#include "cli/mqttc.h"
#include "base/buf.h"
#include "base/err.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MQTTC_MAX_QUEUED (4u << 20)
#define MQTTC_MAX_IN     (16u << 20)
#define MQTTC_KEEPALIVE  60 /* seconds; a PINGREQ every half of it */

struct mqttc {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t ping;
    mqttc_cbs cbs;
    char *client_id;
    weir_buf in;
    size_t queued;
    uint32_t inflight;
    uint16_t next_id;
    bool connected, closing;
    int handles; /* open uv handles; the last close frees */
};

typedef struct mqttc_wreq {
    uv_write_t req;
    mqttc *c;
    size_t len;
    uint8_t data[];
} mqttc_wreq;

static void on_handle_closed(uv_handle_t *h)
{
    mqttc *c = h->data;
    if (--c->handles)
        return;
    if (c->cbs.on_close)
        c->cbs.on_close(c->cbs.arg);
    buf_free(&c->in);
    free(c->client_id);
    free(c);
}

static void mqttc_shut(mqttc *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->connected = false;
    uv_close((uv_handle_t *)&c->ping, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    mqttc_wreq *w = (mqttc_wreq *)req;
    w->c->queued -= w->len;
    free(w);
    (void)status; /* a failed write shows up as a read error / EOF too */
}

/* Sends a packet: fixed header byte, remaining length, then body parts. */
static int send_packet(mqttc *c, uint8_t type, const uint8_t *b1, size_t n1, const uint8_t *b2,
                       size_t n2, bool bounded)
{
    if (c->closing)
        return WEIR_ESHUTDOWN;
    size_t rem = n1 + n2;
    if (rem > 268435455u)
        return WEIR_ETOOBIG;
    if (bounded && c->queued + rem + 5 > MQTTC_MAX_QUEUED)
        return WEIR_EFULL;
    mqttc_wreq *w = malloc(sizeof(*w) + rem + 5);
    if (!w)
        return WEIR_ENOMEM;
    size_t n = 0;
    w->data[n++] = type;
    size_t x = rem;
    do {
        uint8_t d = x % 128;
        x /= 128;
        w->data[n++] = (uint8_t)(d | (x ? 0x80 : 0));
    } while (x);
    if (n1)
        memcpy(w->data + n, b1, n1);
    if (n2)
        memcpy(w->data + n + n1, b2, n2);
    n += rem;
    w->c = c;
    w->len = n;
    uv_buf_t ub = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written)) {
        free(w);
        return WEIR_EIO;
    }
    c->queued += n;
    return WEIR_OK;
}

static size_t put_str(uint8_t *p, const char *s, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

static void on_ping(uv_timer_t *t)
{
    mqttc *c = t->data;
    if (c->connected)
        send_packet(c, 0xC0, NULL, 0, NULL, 0, false);
}

int mqttc_frame(const uint8_t *p, size_t n, size_t *hdr, size_t *rem)
{
    size_t r = 0, i = 1;
    unsigned shift = 0;
    for (;;) {
        if (i >= n)
            return 0;
        if (i > 4)
            return -1; /* a fifth length byte */
        r |= (size_t)(p[i] & 0x7F) << shift;
        shift += 7;
        if (!(p[i++] & 0x80))
            break;
    }
    if (r > MQTTC_MAX_IN)
        return -1;
    if (n < i + r)
        return 0;
    *hdr = i;
    *rem = r;
    return 1;
}

int mqttc_parse_publish(uint8_t type, const uint8_t *p, size_t n, mqttc_pub *out)
{
    memset(out, 0, sizeof(*out));
    out->qos = (type >> 1) & 3;
    if (out->qos == 3 || n < 2)
        return -1;
    size_t tl = (size_t)p[0] << 8 | p[1];
    size_t off = 2 + tl + (out->qos ? 2 : 0);
    if (off > n)
        return -1;
    out->topic = (const char *)p + 2;
    out->topic_len = tl;
    out->id = out->qos ? (uint16_t)(p[2 + tl] << 8 | p[3 + tl]) : 0;
    out->payload = p + off;
    out->len = n - off;
    return 0;
}

/* One complete packet. Returns -1 to close. */
static int handle_packet(mqttc *c, uint8_t type, const uint8_t *p, size_t n)
{
    switch (type >> 4) {
    case 2: /* CONNACK */
        if (n < 2)
            return -1;
        c->connected = p[1] == 0;
        if (c->cbs.on_connect)
            c->cbs.on_connect(c->cbs.arg, p[1]);
        return p[1] == 0 ? 0 : -1;
    case 3: { /* PUBLISH */
        mqttc_pub pub;
        if (mqttc_parse_publish(type, p, n, &pub))
            return -1;
        if (c->cbs.on_message)
            c->cbs.on_message(c->cbs.arg, pub.topic, pub.topic_len, pub.payload, pub.len);
        if (pub.qos == 1 && !c->closing) {
            uint8_t ack[2] = {(uint8_t)(pub.id >> 8), (uint8_t)pub.id};
            send_packet(c, 0x40, ack, 2, NULL, 0, false);
        }
        return 0;
    }
    case 4: /* PUBACK */
        if (n < 2)
            return -1;
        if (c->inflight)
            c->inflight--;
        if (c->cbs.on_puback)
            c->cbs.on_puback(c->cbs.arg, (uint16_t)(p[0] << 8 | p[1]));
        return 0;
    case 9: /* SUBACK */
        if (c->cbs.on_suback)
            c->cbs.on_suback(c->cbs.arg);
        return 0;
    default: /* PINGRESP and the rest */
        return 0;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    mqttc *c = h->data;
    (void)hint;
    if (buf_reserve(&c->in, 65536)) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init((char *)buf_tail(&c->in), 65536);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    mqttc *c = s->data;
    (void)b;
    if (nread < 0) {
        if (!c->connected && c->cbs.on_connect && !c->closing)
            c->cbs.on_connect(c->cbs.arg, WEIR_EIO);
        mqttc_shut(c);
        return;
    }
    buf_commit(&c->in, (size_t)nread);
    for (;;) {
        size_t hdr, rem;
        int f = mqttc_frame(buf_head(&c->in), buf_used(&c->in), &hdr, &rem);
        if (f == 0)
            return;
        if (f < 0 || handle_packet(c, buf_head(&c->in)[0], buf_head(&c->in) + hdr, rem)) {
            mqttc_shut(c);
            return;
        }
        if (c->closing)
            return;
        buf_consume(&c->in, hdr + rem);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    mqttc *c = req->data;
    if (c->closing)
        return;
    if (status) {
        if (c->cbs.on_connect)
            c->cbs.on_connect(c->cbs.arg, WEIR_EIO);
        mqttc_shut(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    size_t idl = strlen(c->client_id);
    uint8_t *v = malloc(12 + idl);
    if (!v) {
        mqttc_shut(c);
        return;
    }
    size_t n = put_str(v, "MQTT", 4);
    v[n++] = 4;    /* 3.1.1 */
    v[n++] = 0x02; /* clean session */
    v[n++] = 0;
    v[n++] = MQTTC_KEEPALIVE;
    n += put_str(v + n, c->client_id, idl);
    send_packet(c, 0x10, v, n, NULL, 0, false);
    free(v);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uv_timer_start(&c->ping, on_ping, MQTTC_KEEPALIVE * 500, MQTTC_KEEPALIVE * 500);
}

mqttc *mqttc_new(uv_loop_t *loop, const char *host, int port, const char *client_id,
                 const mqttc_cbs *cbs)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) || !res)
        return NULL;
    mqttc *c = calloc(1, sizeof(*c));
    if (!c || !(c->client_id = strdup(client_id))) {
        free(c);
        freeaddrinfo(res);
        return NULL;
    }
    c->loop = loop;
    c->cbs = *cbs;
    c->next_id = 1;
    buf_init(&c->in, MQTTC_MAX_IN + 65536 + 8);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->ping);
    c->tcp.data = c->ping.data = c->creq.data = c;
    c->handles = 2;
    if (uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, on_connected)) {
        freeaddrinfo(res);
        c->closing = true;
        c->cbs.on_close = NULL; /* the caller gets NULL, not a callback */
        uv_close((uv_handle_t *)&c->ping, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return NULL;
    }
    freeaddrinfo(res);
    return c;
}

int mqttc_publish(mqttc *c, const char *topic, const void *payload, size_t len, int qos)
{
    if (!c->connected || qos < 0 || qos > 1)
        return WEIR_EINVAL;
    size_t tl = strlen(topic);
    uint8_t *v = malloc(tl + 4);
    if (!v)
        return WEIR_ENOMEM;
    size_t n = put_str(v, topic, tl);
    uint16_t id = 0;
    if (qos) {
        id = c->next_id++;
        if (!c->next_id)
            c->next_id = 1;
        v[n++] = (uint8_t)(id >> 8);
        v[n++] = (uint8_t)id;
    }
    int rc = send_packet(c, (uint8_t)(0x30 | (qos << 1)), v, n, payload, len, true);
    free(v);
    if (rc)
        return rc;
    if (qos)
        c->inflight++;
    return id;
}

int mqttc_subscribe(mqttc *c, const char *filter, int qos)
{
    if (!c->connected)
        return WEIR_EINVAL;
    size_t fl = strlen(filter);
    uint8_t *v = malloc(fl + 5);
    if (!v)
        return WEIR_ENOMEM;
    uint16_t id = c->next_id++;
    if (!c->next_id)
        c->next_id = 1;
    v[0] = (uint8_t)(id >> 8);
    v[1] = (uint8_t)id;
    size_t n = 2 + put_str(v + 2, filter, fl);
    v[n++] = (uint8_t)qos;
    int rc = send_packet(c, 0x82, v, n, NULL, 0, false);
    free(v);
    return rc;
}

size_t mqttc_queued(const mqttc *c)
{
    return c->queued;
}

uint32_t mqttc_inflight(const mqttc *c)
{
    return c->inflight;
}

static void on_shutdown(uv_shutdown_t *sd, int status)
{
    mqttc *c = sd->data;
    (void)status;
    free(sd);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* DISCONNECT, then a shutdown so that every queued write goes out first,
 * then the close. */
void mqttc_close(mqttc *c)
{
    if (!c || c->closing)
        return;
    if (c->connected)
        send_packet(c, 0xE0, NULL, 0, NULL, 0, false);
    c->connected = false;
    c->closing = true;
    uv_close((uv_handle_t *)&c->ping, on_handle_closed);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_shutdown_t *sd = malloc(sizeof(*sd));
    if (sd)
        sd->data = c;
    if (!sd || uv_shutdown(sd, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(sd);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
}
