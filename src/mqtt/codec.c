/* codec.c -- MQTT 3.1.1 and 5.0 packet codec; the contract is in codec.h.
 *
 * Wire format (OASIS mqtt-v3.1.1 section 2, mqtt-v5.0 sections 1.5 and 2):
 *
 *   fixed header   byte 0: type << 4 | flags; then the remaining length as a
 *                  variable byte integer (7 bits per byte, low group first,
 *                  bit 7 = "more", at most 4 bytes, so at most 268435455)
 *   two-byte int   big endian; four-byte int likewise
 *   string/binary  two-byte length, then that many bytes; strings are UTF-8
 *                  without U+0000 and without surrogates (mqtt_utf8_valid)
 *   properties     (5.0) variable byte integer length, then id/value pairs;
 *                  the id decides the value type (prop_rows below)
 *
 * Decoding reads through a bounded cursor (struct rd) whose every read checks
 * the bytes left, so no input can make it read outside the packet; every loop
 * consumes at least one byte per turn, so none can spin. A packet is accepted
 * only when its body is consumed exactly: a short or trailing byte is
 * WEIR_EMALFORMED.
 *
 * Error classes follow the 5.0 text where it names one ("is a Protocol
 * Error", "is a Malformed Packet"); 3.1.1 has one class (close the
 * connection) and gets the same codes, with one exception required by the
 * brief of this module: DUP on a QoS 0 PUBLISH is WEIR_EPROTO in 5.0 (it
 * breaks [MQTT-3.3.1-2], a rule about meaning, not about bytes) and
 * WEIR_EMALFORMED in 3.1.1 (where [MQTT-3.3.1-2] sits among the fixed
 * header rules). Other choices the spec leaves open:
 *   - unknown property id: WEIR_EMALFORMED (its length cannot be known);
 *     a known id in the wrong packet, a duplicate, or an out-of-range value
 *     (0 where 0 is forbidden, a flag other than 0/1): WEIR_EPROTO;
 *   - packet identifier 0 where one is required: WEIR_EPROTO;
 *   - a reason code the packet type does not define: WEIR_EPROTO;
 *   - Will QoS/Retain set without the Will flag, Will QoS 3, the reserved
 *     CONNECT flag, reserved CONNACK flag bits: WEIR_EMALFORMED;
 *   - CONNACK with Session Present and a non-zero code: WEIR_EPROTO;
 *   - more than MQTT_MAX_SUB_IDS subscription identifiers in one PUBLISH:
 *     WEIR_EPROTO (they could not be returned without dropping some);
 *   - a mqtt_decode version other than 4 or 5: WEIR_EVERSION.
 * The reason code and properties at the end of 5.0 acks, DISCONNECT and
 * AUTH are optional: with nothing after the packet id (acks) or nothing at
 * all (DISCONNECT, AUTH) the reason is 0; with one byte it is the reason
 * alone; after that comes a property block (5.0 3.4.2.1, 3.14.2.1).
 * Topic names (PUBLISH, Will Topic, Response Topic) must be non-empty and
 * wildcard-free (WEIR_ETOPIC); topic filters only non-empty, the topic
 * module judges wildcard placement and $share.
 *
 * User properties are returned as one span from the first 0x26 entry to the
 * end of the last. The spec lets other properties sit between two user
 * properties, so the span may contain them: mqtt_user_props_next steps over
 * any property in the span and returns only the 0x26 ones, and the encoder
 * writes only those. (This is the smallest way to keep the zero-copy span of
 * codec.h correct for interleaved input; the common contiguous case is
 * unaffected.)
 *
 * Encoding runs each packet writer twice over the same code: once counting
 * (struct wr with no buffer) to learn the remaining length and property
 * lengths, once writing. Size and bytes therefore cannot disagree. The
 * encoder normalises what is optional: 5.0 acks, DISCONNECT and AUTH drop
 * the reason code and property length when they can, properties not allowed
 * in the packet type are left out (so weir never writes what it would refuse
 * to read), and 3.1.1 SUBSCRIBE options keep only the QoS bits. A string
 * longer than 65535 bytes, a remaining length over MQTT_MAX_REMAINING,
 * QoS 3, AUTH in 3.1.1, a 3.1.1 password without user name, or a raw list
 * (entries, user_props) that does not parse make the packet unencodable.
 * The encoder writes the `version` it is given: mqtt_connect.version (what
 * the decoder saw) and the n_entries counts are not consulted, the raw lists
 * being the truth.
 */
#include "mqtt/codec.h"
#include "base/err.h"

#include <stddef.h>
#include <string.h>

/* ======================================================================== */
/* Tables                                                                    */
/* ======================================================================== */

/* Value types of properties (5.0 2.2.2.2). */
enum prop_kind {
    PK_NONE = 0, /* not a property id */
    PK_BYTE,
    PK_U16,
    PK_U32,
    PK_VARINT,
    PK_UTF8,
    PK_BIN,
    PK_PAIR,
};

/* Value checks beyond the type. */
enum prop_check {
    PC_ANY = 0,
    PC_BOOL,    /* 0 or 1 */
    PC_NONZERO, /* 0 is a Protocol Error */
    PC_TOPIC,   /* a topic name: non-empty, no wildcards */
};

/* Where a property may appear: bit t for packet type t, bit 0 for the Will
 * Properties inside CONNECT (a context of its own in the spec's table). */
#define IN(t)        ((uint16_t)(1u << (t)))
#define WILL         ((uint16_t)1u)
#define ACKS         (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))
#define MSG          (IN(MQTT_PUBLISH) | WILL)
#define ALL_BUT_PING ((uint16_t)(0xFFFFu & ~(IN(MQTT_PINGREQ) | IN(MQTT_PINGRESP)))) /* + WILL */

typedef struct prop_row {
    uint8_t kind;    /* enum prop_kind */
    uint8_t check;   /* enum prop_check */
    uint16_t where;  /* contexts that allow it */
    uint16_t repeat; /* contexts where it may appear more than once */
    uint16_t offset; /* of its value in mqtt_props */
} prop_row;

#define P(id, k, c, w, r, field) [id] = {k, c, w, r, offsetof(mqtt_props, field)}

/* The property table of 5.0 section 2.2.2.2, one row per identifier. */
static const prop_row prop_rows[64] = {
    P(MQTT_PROP_PAYLOAD_FORMAT, PK_BYTE, PC_BOOL, MSG, 0, payload_format),
    P(MQTT_PROP_MESSAGE_EXPIRY, PK_U32, PC_ANY, MSG, 0, message_expiry),
    P(MQTT_PROP_CONTENT_TYPE, PK_UTF8, PC_ANY, MSG, 0, content_type),
    P(MQTT_PROP_RESPONSE_TOPIC, PK_UTF8, PC_TOPIC, MSG, 0, response_topic),
    P(MQTT_PROP_CORRELATION_DATA, PK_BIN, PC_ANY, MSG, 0, correlation_data),
    P(MQTT_PROP_SUBSCRIPTION_ID, PK_VARINT, PC_NONZERO, IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE),
      IN(MQTT_PUBLISH), sub_ids),
    P(MQTT_PROP_SESSION_EXPIRY, PK_U32, PC_ANY,
      IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT), 0, session_expiry),
    P(MQTT_PROP_ASSIGNED_CLIENT_ID, PK_UTF8, PC_ANY, IN(MQTT_CONNACK), 0, assigned_client_id),
    P(MQTT_PROP_SERVER_KEEP_ALIVE, PK_U16, PC_ANY, IN(MQTT_CONNACK), 0, server_keep_alive),
    P(MQTT_PROP_AUTH_METHOD, PK_UTF8, PC_ANY, IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH),
      0, auth_method),
    P(MQTT_PROP_AUTH_DATA, PK_BIN, PC_ANY, IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH), 0,
      auth_data),
    P(MQTT_PROP_REQUEST_PROBLEM_INFO, PK_BYTE, PC_BOOL, IN(MQTT_CONNECT), 0, request_problem_info),
    P(MQTT_PROP_WILL_DELAY, PK_U32, PC_ANY, WILL, 0, will_delay),
    P(MQTT_PROP_REQUEST_RESPONSE_INFO, PK_BYTE, PC_BOOL, IN(MQTT_CONNECT), 0,
      request_response_info),
    P(MQTT_PROP_RESPONSE_INFO, PK_UTF8, PC_ANY, IN(MQTT_CONNACK), 0, response_info),
    P(MQTT_PROP_SERVER_REFERENCE, PK_UTF8, PC_ANY, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT), 0,
      server_reference),
    P(MQTT_PROP_REASON_STRING, PK_UTF8, PC_ANY,
      IN(MQTT_CONNACK) | ACKS | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) | IN(MQTT_DISCONNECT) |
          IN(MQTT_AUTH),
      0, reason_string),
    P(MQTT_PROP_RECEIVE_MAXIMUM, PK_U16, PC_NONZERO, IN(MQTT_CONNECT) | IN(MQTT_CONNACK), 0,
      receive_maximum),
    P(MQTT_PROP_TOPIC_ALIAS_MAXIMUM, PK_U16, PC_ANY, IN(MQTT_CONNECT) | IN(MQTT_CONNACK), 0,
      topic_alias_maximum),
    P(MQTT_PROP_TOPIC_ALIAS, PK_U16, PC_NONZERO, IN(MQTT_PUBLISH), 0, topic_alias),
    P(MQTT_PROP_MAXIMUM_QOS, PK_BYTE, PC_BOOL, IN(MQTT_CONNACK), 0, maximum_qos),
    P(MQTT_PROP_RETAIN_AVAILABLE, PK_BYTE, PC_BOOL, IN(MQTT_CONNACK), 0, retain_available),
    P(MQTT_PROP_USER_PROPERTY, PK_PAIR, PC_ANY, ALL_BUT_PING, ALL_BUT_PING, user_props),
    P(MQTT_PROP_MAXIMUM_PACKET_SIZE, PK_U32, PC_NONZERO, IN(MQTT_CONNECT) | IN(MQTT_CONNACK), 0,
      maximum_packet_size),
    P(MQTT_PROP_WILDCARD_SUB_AVAILABLE, PK_BYTE, PC_BOOL, IN(MQTT_CONNACK), 0,
      wildcard_sub_available),
    P(MQTT_PROP_SUB_ID_AVAILABLE, PK_BYTE, PC_BOOL, IN(MQTT_CONNACK), 0, sub_id_available),
    P(MQTT_PROP_SHARED_SUB_AVAILABLE, PK_BYTE, PC_BOOL, IN(MQTT_CONNACK), 0, shared_sub_available),
};

#undef P

/* Reason codes each packet type may carry (5.0 section 3, "Reason Code"
 * tables of each packet; 3.1.1 3.2.2.3 and 3.9.3). */
typedef struct code_set {
    const uint8_t *codes;
    uint8_t n;
} code_set;

/* clang-format off */
#define CODES(a) {a, (uint8_t)sizeof(a)}
/* clang-format on */

static const uint8_t rc5_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                      0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                      0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc5_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc5_pubrel[] = {0x00, 0x92};
static const uint8_t rc5_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                     0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc5_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc5_disconnect[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                         0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                         0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc5_auth[] = {0x00, 0x18, 0x19};
static const uint8_t rc3_connack[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
static const uint8_t rc3_suback[] = {0x00, 0x01, 0x02, 0x80};

/* A cursor over packet bytes: reads stay inside p[pos..end). */
typedef struct rd {
    const uint8_t *p;
    size_t pos;
    size_t end;
    const char *why; /* static sentence set by the first failure */
} rd;

/* An output cursor; p == NULL only counts. */
typedef struct wr {
    uint8_t *p;
    size_t n;   /* bytes produced (or counted) so far */
    size_t cap; /* capacity of p */
    bool bad;   /* the packet cannot be encoded */
} wr;

typedef int (*decode_fn)(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
typedef void (*encode_fn)(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);

static int dec_connect(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_connack(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_publish(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_ack(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_subscribe(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_suback(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_unsubscribe(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_empty(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static int dec_disconnect(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out);
static void enc_connect(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_connack(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_publish(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_ack(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_subscribe(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_suback(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_unsubscribe(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_empty(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);
static void enc_disconnect(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags);

/* Fixed-header flags that are not PUBLISH's: every other type has exactly
 * one legal value (5.0 2.1.3, 3.1.1 2.2.2). */
#define FLAGS_PUBLISH 0xFF

typedef struct packet_row {
    const char *name;
    uint8_t flags;       /* required low nibble, or FLAGS_PUBLISH */
    uint8_t min_version; /* MQTT_V5 for AUTH */
    decode_fn decode;
    encode_fn encode;
    code_set rc3; /* 3.1.1 return codes, when the packet carries one */
    code_set rc5; /* 5.0 reason codes */
} packet_row;

/* One row per packet type; type 0 is reserved and has no row. */
static const packet_row packet_rows[16] = {
    [MQTT_CONNECT] = {"CONNECT", 0, MQTT_V311, dec_connect, enc_connect, {0}, {0}},
    [MQTT_CONNACK] = {"CONNACK", 0, MQTT_V311, dec_connack, enc_connack, CODES(rc3_connack),
                      CODES(rc5_connack)},
    [MQTT_PUBLISH] = {"PUBLISH", FLAGS_PUBLISH, MQTT_V311, dec_publish, enc_publish, {0}, {0}},
    [MQTT_PUBACK] = {"PUBACK", 0, MQTT_V311, dec_ack, enc_ack, {0}, CODES(rc5_puback)},
    [MQTT_PUBREC] = {"PUBREC", 0, MQTT_V311, dec_ack, enc_ack, {0}, CODES(rc5_puback)},
    [MQTT_PUBREL] = {"PUBREL", 2, MQTT_V311, dec_ack, enc_ack, {0}, CODES(rc5_pubrel)},
    [MQTT_PUBCOMP] = {"PUBCOMP", 0, MQTT_V311, dec_ack, enc_ack, {0}, CODES(rc5_pubrel)},
    [MQTT_SUBSCRIBE] = {"SUBSCRIBE", 2, MQTT_V311, dec_subscribe, enc_subscribe, {0}, {0}},
    [MQTT_SUBACK] = {"SUBACK", 0, MQTT_V311, dec_suback, enc_suback, CODES(rc3_suback),
                     CODES(rc5_suback)},
    [MQTT_UNSUBSCRIBE] = {"UNSUBSCRIBE", 2, MQTT_V311, dec_unsubscribe, enc_unsubscribe, {0}, {0}},
    [MQTT_UNSUBACK] = {"UNSUBACK", 0, MQTT_V311, dec_suback, enc_suback, {0}, CODES(rc5_unsuback)},
    [MQTT_PINGREQ] = {"PINGREQ", 0, MQTT_V311, dec_empty, enc_empty, {0}, {0}},
    [MQTT_PINGRESP] = {"PINGRESP", 0, MQTT_V311, dec_empty, enc_empty, {0}, {0}},
    [MQTT_DISCONNECT] =
        {"DISCONNECT", 0, MQTT_V311, dec_disconnect, enc_disconnect, {0}, CODES(rc5_disconnect)},
    [MQTT_AUTH] = {"AUTH", 0, MQTT_V5, dec_disconnect, enc_disconnect, {0}, CODES(rc5_auth)},
};

const char *mqtt_type_name(int type)
{
    if (type < 0 || type > 15 || !packet_rows[type].name)
        return "UNKNOWN";
    return packet_rows[type].name;
}

/* ======================================================================== */
/* Primitives                                                                */
/* ======================================================================== */

unsigned mqtt_varint_size(uint32_t v)
{
    if (v < 128u)
        return 1;
    if (v < 16384u)
        return 2;
    if (v < 2097152u)
        return 3;
    if (v <= MQTT_MAX_REMAINING)
        return 4;
    return 0;
}

/* Length of the UTF-8 sequence led by b, and the smallest code point it may
 * carry (to refuse overlong forms); 0 for a byte that cannot lead. */
static unsigned utf8_lead(uint8_t b, uint32_t *cp, uint32_t *min)
{
    if (b < 0x80) {
        *cp = b;
        *min = 0;
        return 1;
    }
    if ((b & 0xE0) == 0xC0) {
        *cp = b & 0x1Fu;
        *min = 0x80;
        return 2;
    }
    if ((b & 0xF0) == 0xE0) {
        *cp = b & 0x0Fu;
        *min = 0x800;
        return 3;
    }
    if ((b & 0xF8) == 0xF0) {
        *cp = b & 0x07u;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

bool mqtt_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && !s)
        return false;
    while (i < n) {
        uint32_t cp, min;
        unsigned len = utf8_lead(s[i], &cp, &min);
        if (len == 0 || len > n - i)
            return false;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        /* U+0000 is forbidden by [MQTT-1.5.4-2]; surrogates by -1. */
        if (cp < min || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static int rd_fail(rd *r, int err, const char *why)
{
    if (!r->why)
        r->why = why;
    return err;
}

static size_t rd_left(const rd *r)
{
    return r->end - r->pos;
}

static int rd_u8(rd *r, uint8_t *v)
{
    if (rd_left(r) < 1)
        return rd_fail(r, WEIR_EMALFORMED, "packet ends inside a byte field");
    *v = r->p[r->pos++];
    return WEIR_OK;
}

static int rd_u16(rd *r, uint16_t *v)
{
    if (rd_left(r) < 2)
        return rd_fail(r, WEIR_EMALFORMED, "packet ends inside a two-byte integer");
    *v = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return WEIR_OK;
}

static int rd_u32(rd *r, uint32_t *v)
{
    if (rd_left(r) < 4)
        return rd_fail(r, WEIR_EMALFORMED, "packet ends inside a four-byte integer");
    const uint8_t *b = r->p + r->pos;
    *v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    r->pos += 4;
    return WEIR_OK;
}

/* Variable byte integer (5.0 1.5.5): at most four bytes. */
static int rd_varint(rd *r, uint32_t *v)
{
    uint32_t val = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (rd_left(r) < 1)
            return rd_fail(r, WEIR_EMALFORMED, "packet ends inside a variable byte integer");
        uint8_t b = r->p[r->pos++];
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = val;
            return WEIR_OK;
        }
    }
    return rd_fail(r, WEIR_EMALFORMED, "variable byte integer longer than four bytes");
}

/* Binary data: two-byte length then the bytes; points into the packet. */
static int rd_bin(rd *r, mqtt_bytes *b)
{
    uint16_t n;
    int rc = rd_u16(r, &n);
    if (rc)
        return rc;
    if (rd_left(r) < n)
        return rd_fail(r, WEIR_EMALFORMED, "string or binary length runs past the packet");
    b->data = r->p + r->pos;
    b->len = n;
    r->pos += n;
    return WEIR_OK;
}

static int rd_utf8(rd *r, mqtt_bytes *b)
{
    int rc = rd_bin(r, b);
    if (rc)
        return rc;
    if (!mqtt_utf8_valid(b->data, b->len))
        return rd_fail(r, WEIR_EUTF8, "string is not valid UTF-8 or contains U+0000");
    return WEIR_OK;
}

/* A topic name as PUBLISH, the Will and Response Topic carry it: wildcards
 * are for filters only [MQTT-3.3.2-2]; emptiness is judged by the caller
 * because a 5.0 PUBLISH may leave it empty behind a topic alias. */
static bool topic_has_wildcard(mqtt_bytes t)
{
    return t.len && (memchr(t.data, '+', t.len) || memchr(t.data, '#', t.len));
}

static bool code_allowed(code_set set, uint8_t code)
{
    return set.n && memchr(set.codes, code, set.n) != NULL;
}

/* Reads a packet identifier that must not be 0 ([MQTT-2.2.1-3]). */
static int rd_packet_id(rd *r, uint16_t *id)
{
    int rc = rd_u16(r, id);
    if (rc)
        return rc;
    if (*id == 0)
        return rd_fail(r, WEIR_EPROTO, "packet identifier 0");
    return WEIR_OK;
}

/* ======================================================================== */
/* Framing                                                                   */
/* ======================================================================== */

/* Parses the fixed header of buf[0..len). Returns WEIR_OK with the
 * remaining length and header size, WEIR_EAGAIN when the length is cut
 * short, WEIR_EMALFORMED for a fifth length byte, and WEIR_ETOOBIG when the
 * bytes seen already prove the packet is larger than max_size (non-minimal
 * encodings add nothing, so the digits seen so far are a lower bound). */
static int frame_header(const uint8_t *buf, size_t len, uint64_t max_size, uint32_t *rem,
                        size_t *hdr)
{
    uint32_t val = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (len < 2 + i)
            return WEIR_EAGAIN;
        uint8_t b = buf[1 + i];
        val |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            /* Size is judged once the length is complete, so a five-byte
             * length is reported as malformed, not as too big. */
            if ((uint64_t)val + 2 + i > max_size)
                return WEIR_ETOOBIG;
            *rem = val;
            *hdr = 2 + i;
            return WEIR_OK;
        }
    }
    return WEIR_EMALFORMED;
}

int mqtt_frame(const uint8_t *buf, size_t len, uint32_t max_size, size_t *pkt_len)
{
    uint64_t max = max_size ? max_size : (uint64_t)MQTT_MAX_REMAINING + 5;
    uint32_t rem;
    size_t hdr;
    if (!buf)
        return WEIR_EAGAIN;
    int rc = frame_header(buf, len, max, &rem, &hdr);
    if (rc)
        return rc;
    if (len - hdr < rem)
        return WEIR_EAGAIN;
    *pkt_len = hdr + rem;
    return WEIR_OK;
}

/* ======================================================================== */
/* Properties                                                                */
/* ======================================================================== */

static int prop_check_value(rd *r, const prop_row *row, uint32_t v)
{
    if (row->check == PC_BOOL && v > 1)
        return rd_fail(r, WEIR_EPROTO, "property value must be 0 or 1");
    if (row->check == PC_NONZERO && v == 0)
        return rd_fail(r, WEIR_EPROTO, "property value must not be 0");
    return WEIR_OK;
}

/* Reads the integer value of a PK_BYTE/U16/U32/VARINT property. */
static int prop_read_int(rd *r, uint8_t kind, uint32_t *v)
{
    uint8_t b = 0; /* stored through *v even when the read fails */
    uint16_t s = 0;
    int rc;
    switch (kind) {
    case PK_BYTE:
        rc = rd_u8(r, &b);
        *v = b;
        return rc;
    case PK_U16:
        rc = rd_u16(r, &s);
        *v = s;
        return rc;
    case PK_U32:
        return rd_u32(r, v);
    default:
        return rd_varint(r, v);
    }
}

/* Stores an integer value at its table offset. */
static void prop_store_int(mqtt_props *pr, const prop_row *row, uint32_t v)
{
    char *field = (char *)pr + row->offset;
    if (row->kind == PK_BYTE)
        *(uint8_t *)field = (uint8_t)v;
    else if (row->kind == PK_U16)
        *(uint16_t *)field = (uint16_t)v;
    else
        *(uint32_t *)field = v;
}

/* Reads one property value of any kind; integer kinds are checked and
 * stored, string kinds are stored in *span (the caller places it). */
static int prop_read_value(rd *r, const prop_row *row, uint32_t *v, mqtt_bytes *span)
{
    int rc;
    switch (row->kind) {
    case PK_UTF8:
        if ((rc = rd_utf8(r, span)))
            return rc;
        if (row->check == PC_TOPIC && (span->len == 0 || topic_has_wildcard(*span)))
            return rd_fail(r, WEIR_ETOPIC, "response topic empty or with wildcards");
        return WEIR_OK;
    case PK_BIN:
        return rd_bin(r, span);
    case PK_PAIR:
        if ((rc = rd_utf8(r, span)))
            return rc;
        return rd_utf8(r, span);
    default:
        if ((rc = prop_read_int(r, row->kind, v)))
            return rc;
        return prop_check_value(r, row, *v);
    }
}

/* Decodes one property at r->pos into pr, for context bit `ctx`. */
static int prop_decode_one(rd *r, uint16_t ctx, mqtt_props *pr)
{
    size_t start = r->pos;
    uint8_t id;
    uint32_t v = 0;
    mqtt_bytes span = {0};
    int rc = rd_u8(r, &id);
    if (rc)
        return rc;
    const prop_row *row = id < 64 ? &prop_rows[id] : NULL;
    if (!row || row->kind == PK_NONE)
        return rd_fail(r, WEIR_EMALFORMED, "unknown property identifier");
    if (!(row->where & ctx))
        return rd_fail(r, WEIR_EPROTO, "property not allowed in this packet");
    if ((pr->present & MQTT_PROP_BIT(id)) && !(row->repeat & ctx))
        return rd_fail(r, WEIR_EPROTO, "property included more than once");
    if ((rc = prop_read_value(r, row, &v, &span)))
        return rc;
    if (id == MQTT_PROP_USER_PROPERTY) {
        /* The span runs from the first entry to the end of the last. */
        if (!(pr->present & MQTT_PROP_BIT(id)))
            pr->user_props.data = r->p + start;
        pr->user_props.len = (uint32_t)(r->p + r->pos - pr->user_props.data);
    } else if (id == MQTT_PROP_SUBSCRIPTION_ID) {
        if (pr->n_sub_ids >= MQTT_MAX_SUB_IDS)
            return rd_fail(r, WEIR_EPROTO, "more subscription identifiers than weir keeps");
        pr->sub_ids[pr->n_sub_ids++] = v;
    } else if (row->kind == PK_UTF8 || row->kind == PK_BIN) {
        *(mqtt_bytes *)((char *)pr + row->offset) = span;
    } else {
        prop_store_int(pr, row, v);
    }
    pr->present |= MQTT_PROP_BIT(id);
    return WEIR_OK;
}

/* Decodes a property block (length, then properties) for context `ctx`. */
static int props_decode(rd *r, uint16_t ctx, mqtt_props *pr)
{
    uint32_t len;
    int rc = rd_varint(r, &len);
    if (rc)
        return rc;
    if (len > rd_left(r))
        return rd_fail(r, WEIR_EMALFORMED, "property length runs past the packet");
    size_t outer = r->end;
    r->end = r->pos + len;
    while (r->pos < r->end) {
        if ((rc = prop_decode_one(r, ctx, pr)))
            return rc;
    }
    r->end = outer;
    if ((pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA)) &&
        !(pr->present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
        return rd_fail(r, WEIR_EPROTO, "authentication data without authentication method");
    return WEIR_OK;
}

/* Steps over one property of a span that may be caller-built: 1 with the
 * key and value when it was a user property, 2 for another property, 0 at
 * the end, -1 when the span does not parse. Shared by the iterator and the
 * encoder so that both accept exactly the same spans. */
static int user_props_step(rd *r, mqtt_bytes *key, mqtt_bytes *val)
{
    uint8_t id;
    uint32_t v;
    mqtt_bytes span;
    if (r->pos >= r->end)
        return 0;
    if (rd_u8(r, &id))
        return -1;
    const prop_row *row = id < 64 ? &prop_rows[id] : NULL;
    if (!row || row->kind == PK_NONE)
        return -1;
    if (id != MQTT_PROP_USER_PROPERTY) {
        if (row->kind == PK_UTF8 || row->kind == PK_BIN)
            return rd_bin(r, &span) ? -1 : 2;
        return prop_read_int(r, row->kind, &v) ? -1 : 2;
    }
    if (rd_bin(r, key) || rd_bin(r, val))
        return -1;
    return 1;
}

bool mqtt_user_props_next(mqtt_bytes raw, uint32_t *pos, mqtt_bytes *key, mqtt_bytes *val)
{
    if (!raw.data)
        return false;
    rd r = {raw.data, *pos, raw.len, NULL};
    if (r.pos > r.end)
        return false;
    for (;;) {
        int step = user_props_step(&r, key, val);
        if (step <= 0)
            return false;
        *pos = (uint32_t)r.pos;
        if (step == 1)
            return true;
    }
}

bool mqtt_user_prop_append(uint8_t *dst, size_t cap, uint32_t *len, const char *key,
                           const char *val)
{
    if (!dst || !len || !key || !val || *len > cap)
        return false;
    size_t kl = strlen(key), vl = strlen(val);
    if (kl > 0xFFFF || vl > 0xFFFF)
        return false;
    size_t need = 5 + kl + vl;
    if (need > cap - *len || *len + need > UINT32_MAX)
        return false;
    uint8_t *p = dst + *len;
    *p++ = MQTT_PROP_USER_PROPERTY;
    *p++ = (uint8_t)(kl >> 8);
    *p++ = (uint8_t)kl;
    memcpy(p, key, kl);
    p += kl;
    *p++ = (uint8_t)(vl >> 8);
    *p++ = (uint8_t)vl;
    memcpy(p, val, vl);
    *len += (uint32_t)need;
    return true;
}

/* ======================================================================== */
/* Per-packet decode                                                         */
/* ======================================================================== */

/* CONNECT variable header up to the properties (5.0 3.1.2). Returns the
 * connect flags byte in *cflags. */
static int dec_connect_header(rd *r, mqtt_connect *c, uint8_t *cflags)
{
    mqtt_bytes name;
    uint8_t level;
    int rc;
    if ((rc = rd_bin(r, &name)) || (rc = rd_u8(r, &level)))
        return rc;
    if (name.len != 4 || memcmp(name.data, "MQTT", 4) != 0)
        return rd_fail(r, WEIR_EVERSION, "protocol name is not MQTT");
    if (level != MQTT_V311 && level != MQTT_V5)
        return rd_fail(r, WEIR_EVERSION, "protocol level is neither 4 nor 5");
    c->version = level;
    if ((rc = rd_u8(r, cflags)) || (rc = rd_u16(r, &c->keep_alive)))
        return rc;
    uint8_t f = *cflags;
    uint8_t will_qos = (f >> 3) & 3;
    if (f & 0x01)
        return rd_fail(r, WEIR_EMALFORMED, "reserved CONNECT flag set");
    if (!(f & 0x04) && (will_qos || (f & 0x20)))
        return rd_fail(r, WEIR_EMALFORMED, "will QoS or retain without the will flag");
    if (will_qos == 3)
        return rd_fail(r, WEIR_EMALFORMED, "will QoS 3");
    if (level == MQTT_V311 && (f & 0x40) && !(f & 0x80))
        return rd_fail(r, WEIR_EMALFORMED, "password flag without user name flag");
    c->clean_start = f & 0x02;
    c->will = f & 0x04;
    c->will_qos = will_qos;
    c->will_retain = f & 0x20;
    c->has_username = f & 0x80;
    c->has_password = f & 0x40;
    if (level == MQTT_V5)
        return props_decode(r, IN(MQTT_CONNECT), &c->props);
    return WEIR_OK;
}

/* CONNECT payload (5.0 3.1.3): client id, will, user name, password. */
static int dec_connect(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_connect *c = &out->u.connect;
    uint8_t cflags;
    int rc;
    if ((rc = dec_connect_header(r, c, &cflags)))
        return rc;
    if ((rc = rd_utf8(r, &c->client_id)))
        return rc;
    if (c->will) {
        if (c->version == MQTT_V5 && (rc = props_decode(r, WILL, &c->will_props)))
            return rc;
        if ((rc = rd_utf8(r, &c->will_topic)))
            return rc;
        if (c->will_topic.len == 0 || topic_has_wildcard(c->will_topic))
            return rd_fail(r, WEIR_ETOPIC, "will topic empty or with wildcards");
        if ((rc = rd_bin(r, &c->will_payload)))
            return rc;
    }
    if (c->has_username && (rc = rd_utf8(r, &c->username)))
        return rc;
    if (c->has_password && (rc = rd_bin(r, &c->password)))
        return rc;
    return WEIR_OK;
}

static int dec_connack(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_connack *c = &out->u.connack;
    uint8_t ack_flags;
    int rc;
    if ((rc = rd_u8(r, &ack_flags)) || (rc = rd_u8(r, &c->reason)))
        return rc;
    if (ack_flags & 0xFE)
        return rd_fail(r, WEIR_EMALFORMED, "reserved CONNACK flags set");
    c->session_present = ack_flags & 1;
    const packet_row *row = &packet_rows[MQTT_CONNACK];
    if (!code_allowed(version == MQTT_V5 ? row->rc5 : row->rc3, c->reason))
        return rd_fail(r, WEIR_EPROTO, "unknown CONNACK reason code");
    if (c->session_present && c->reason != 0)
        return rd_fail(r, WEIR_EPROTO, "session present on a refused connection");
    if (version == MQTT_V5)
        return props_decode(r, IN(MQTT_CONNACK), &c->props);
    return WEIR_OK;
}

static int dec_publish(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_publish *pb = &out->u.publish;
    int rc;
    pb->qos = (flags >> 1) & 3;
    pb->dup = flags & 0x08;
    pb->retain = flags & 0x01;
    if (pb->qos == 3)
        return rd_fail(r, WEIR_EMALFORMED, "PUBLISH with QoS 3");
    if (pb->dup && pb->qos == 0)
        return rd_fail(r, version == MQTT_V5 ? WEIR_EPROTO : WEIR_EMALFORMED,
                       "DUP set on a QoS 0 PUBLISH");
    if ((rc = rd_utf8(r, &pb->topic)))
        return rc;
    if (pb->qos && (rc = rd_packet_id(r, &pb->packet_id)))
        return rc;
    if (version == MQTT_V5 && (rc = props_decode(r, IN(MQTT_PUBLISH), &pb->props)))
        return rc;
    if (topic_has_wildcard(pb->topic))
        return rd_fail(r, WEIR_ETOPIC, "topic name with wildcards");
    if (pb->topic.len == 0 && !(pb->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS)))
        return rd_fail(r, WEIR_ETOPIC, "empty topic name without a topic alias");
    pb->payload.data = r->p + r->pos;
    pb->payload.len = (uint32_t)rd_left(r);
    r->pos = r->end;
    return WEIR_OK;
}

/* Reads the optional 5.0 reason code and properties that end an ack,
 * DISCONNECT or AUTH: absent when no byte is left, reason only when one
 * byte is left (5.0 3.4.2.1, 3.14.2.1, 3.15.2.1). */
static int dec_reason_props(rd *r, uint8_t type, uint8_t *reason, mqtt_props *pr)
{
    int rc;
    if (rd_left(r) == 0)
        return WEIR_OK;
    if ((rc = rd_u8(r, reason)))
        return rc;
    if (!code_allowed(packet_rows[type].rc5, *reason))
        return rd_fail(r, WEIR_EPROTO, "reason code not defined for this packet");
    if (rd_left(r) == 0)
        return WEIR_OK;
    return props_decode(r, IN(type), pr);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static int dec_ack(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_ack *a = &out->u.ack;
    int rc = rd_packet_id(r, &a->packet_id);
    if (rc || version != MQTT_V5)
        return rc;
    return dec_reason_props(r, (uint8_t)out->type, &a->reason, &a->props);
}

/* DISCONNECT and AUTH; a 3.1.1 DISCONNECT has no body. */
static int dec_disconnect(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_disconnect *d = &out->u.disconnect;
    if (version != MQTT_V5)
        return WEIR_OK;
    return dec_reason_props(r, (uint8_t)out->type, &d->reason, &d->props);
}

/* PINGREQ, PINGRESP: the trailing-byte check of mqtt_decode does it all. */
static int dec_empty(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    return WEIR_OK;
}

/* Checks one subscription options byte (5.0 3.8.3.1, 3.1.1 3.8.3.1). */
static int check_sub_options(rd *r, uint8_t o, uint8_t version)
{
    if (version == MQTT_V311) {
        if (o & 0xFC)
            return rd_fail(r, WEIR_EMALFORMED, "reserved subscription option bits set");
        if (MQTT_SUBOPT_QOS(o) == 3)
            return rd_fail(r, WEIR_EMALFORMED, "subscription QoS 3");
        return WEIR_OK;
    }
    if (o & 0xC0)
        return rd_fail(r, WEIR_EMALFORMED, "reserved subscription option bits set");
    if (MQTT_SUBOPT_QOS(o) == 3)
        return rd_fail(r, WEIR_EPROTO, "subscription QoS 3");
    if (MQTT_SUBOPT_RH(o) == 3)
        return rd_fail(r, WEIR_EPROTO, "retain handling 3");
    return WEIR_OK;
}

/* Validates a list of topic filters (with an options byte each when
 * `options`) up to the end of the packet; returns the span and count. */
static int dec_filter_list(rd *r, uint8_t version, bool options, mqtt_bytes *span, uint32_t *count)
{
    int rc;
    span->data = r->p + r->pos;
    span->len = (uint32_t)rd_left(r);
    *count = 0;
    while (rd_left(r) > 0) {
        mqtt_bytes filter;
        uint8_t o;
        if ((rc = rd_utf8(r, &filter)))
            return rc;
        if (filter.len == 0)
            return rd_fail(r, WEIR_ETOPIC, "empty topic filter");
        if (options && ((rc = rd_u8(r, &o)) || (rc = check_sub_options(r, o, version))))
            return rc;
        (*count)++;
    }
    if (*count == 0)
        return rd_fail(r, WEIR_EPROTO, "no topic filter in the packet");
    return WEIR_OK;
}

static int dec_subscribe(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_subscribe *s = &out->u.subscribe;
    int rc = rd_packet_id(r, &s->packet_id);
    if (rc)
        return rc;
    if (version == MQTT_V5 && (rc = props_decode(r, IN(MQTT_SUBSCRIBE), &s->props)))
        return rc;
    return dec_filter_list(r, version, true, &s->entries, &s->n_entries);
}

static int dec_unsubscribe(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_unsubscribe *u = &out->u.unsubscribe;
    int rc = rd_packet_id(r, &u->packet_id);
    if (rc)
        return rc;
    if (version == MQTT_V5 && (rc = props_decode(r, IN(MQTT_UNSUBSCRIBE), &u->props)))
        return rc;
    return dec_filter_list(r, version, false, &u->entries, &u->n_entries);
}

/* SUBACK and UNSUBACK: one reason code per filter; a 3.1.1 UNSUBACK ends
 * after its packet identifier. */
static int dec_suback(rd *r, uint8_t flags, uint8_t version, mqtt_packet *out)
{
    mqtt_suback *s = &out->u.suback;
    const packet_row *row = &packet_rows[out->type];
    int rc = rd_packet_id(r, &s->packet_id);
    if (rc)
        return rc;
    if (version == MQTT_V311 && out->type == MQTT_UNSUBACK)
        return WEIR_OK;
    if (version == MQTT_V5 && (rc = props_decode(r, IN(out->type), &s->props)))
        return rc;
    if (rd_left(r) == 0)
        return rd_fail(r, WEIR_EPROTO, "acknowledgement without reason codes");
    s->reasons.data = r->p + r->pos;
    s->reasons.len = (uint32_t)rd_left(r);
    for (uint32_t i = 0; i < s->reasons.len; i++) {
        if (!code_allowed(version == MQTT_V5 ? row->rc5 : row->rc3, s->reasons.data[i]))
            return rd_fail(r, WEIR_EPROTO, "reason code not defined for this packet");
    }
    r->pos = r->end;
    return WEIR_OK;
}

/* Checks the fixed header of r's packet against the packet table and runs
 * the body decoder. `version` 0 means "only CONNECT is acceptable". */
static int decode_packet(rd *r, uint8_t version, mqtt_packet *out)
{
    uint32_t rem;
    size_t hdr;
    if (frame_header(r->p, r->end, UINT64_MAX, &rem, &hdr) != WEIR_OK || r->end - hdr != rem)
        return rd_fail(r, WEIR_EMALFORMED, "remaining length does not match the packet size");
    uint8_t type = r->p[0] >> 4, flags = r->p[0] & 0x0F;
    const packet_row *row = &packet_rows[type];
    if (type != MQTT_CONNECT && version == 0)
        return rd_fail(r, WEIR_EPROTO, "first packet is not CONNECT");
    if (type != MQTT_CONNECT && version != MQTT_V311 && version != MQTT_V5)
        return rd_fail(r, WEIR_EVERSION, "protocol version is neither 4 nor 5");
    if (!row->decode || (type != MQTT_CONNECT && version < row->min_version))
        return rd_fail(r, WEIR_EMALFORMED, "reserved packet type");
    if (row->flags != FLAGS_PUBLISH && flags != row->flags)
        return rd_fail(r, WEIR_EMALFORMED, "invalid fixed header flags");
    memset(out, 0, sizeof(*out));
    out->type = (mqtt_type)type;
    r->pos = hdr;
    int rc = row->decode(r, flags, version, out);
    if (rc == WEIR_OK && r->pos != r->end)
        return rd_fail(r, WEIR_EMALFORMED, "bytes left over after the packet");
    return rc;
}

static int decode(const uint8_t *pkt, size_t len, uint8_t version, mqtt_packet *out,
                  const char **why)
{
    rd r = {pkt, 0, len, NULL};
    int rc = WEIR_EMALFORMED;
    if (pkt && out)
        rc = decode_packet(&r, version, out);
    if (rc && why)
        *why = r.why ? r.why : "no packet";
    return rc;
}

int mqtt_decode_connect(const uint8_t *pkt, size_t len, mqtt_packet *out, const char **why)
{
    return decode(pkt, len, 0, out, why);
}

int mqtt_decode(const uint8_t *pkt, size_t len, uint8_t version, mqtt_packet *out, const char **why)
{
    /* Version 0 is decode()'s CONNECT-only mode; from a caller it is simply
     * an unknown version. */
    if (version == 0)
        version = 0xFF;
    return decode(pkt, len, version, out, why);
}

/* ======================================================================== */
/* Iterators                                                                 */
/* ======================================================================== */

/* The lists were validated by the decoder; the bounds checks below only
 * keep a caller-built or stale span from being read out of bounds. */

bool mqtt_sub_next(const mqtt_subscribe *s, uint32_t *pos, mqtt_sub_entry *out)
{
    if (!s->entries.data)
        return false;
    rd r = {s->entries.data, *pos, s->entries.len, NULL};
    if (r.pos >= r.end)
        return false;
    if (rd_bin(&r, &out->filter) || rd_u8(&r, &out->options))
        return false;
    *pos = (uint32_t)r.pos;
    return true;
}

bool mqtt_unsub_next(const mqtt_unsubscribe *u, uint32_t *pos, mqtt_bytes *filter)
{
    if (!u->entries.data)
        return false;
    rd r = {u->entries.data, *pos, u->entries.len, NULL};
    if (r.pos >= r.end)
        return false;
    if (rd_bin(&r, filter))
        return false;
    *pos = (uint32_t)r.pos;
    return true;
}

/* ======================================================================== */
/* Encode: primitives                                                        */
/* ======================================================================== */

static void wr_put(wr *w, const void *src, size_t n)
{
    if (w->p && n) {
        if (w->n > w->cap || n > w->cap - w->n) {
            w->bad = true;
            return;
        }
        memcpy(w->p + w->n, src, n);
    }
    w->n += n;
}

static void wr_u8(wr *w, uint8_t v)
{
    wr_put(w, &v, 1);
}

static void wr_u16(wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    wr_put(w, b, 2);
}

static void wr_u32(wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    wr_put(w, b, 4);
}

static void wr_varint(wr *w, size_t v)
{
    uint8_t b[4];
    unsigned n = 0;
    if (v > MQTT_MAX_REMAINING) {
        w->bad = true;
        return;
    }
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    wr_put(w, b, n);
}

/* A string or binary field; over 65535 bytes it cannot be encoded. */
static void wr_bin(wr *w, mqtt_bytes b)
{
    if (b.len > 0xFFFF || (b.len && !b.data)) {
        w->bad = true;
        return;
    }
    wr_u16(w, (uint16_t)b.len);
    wr_put(w, b.data, b.len);
}

/* Raw bytes of a span (payload, reason codes); a span with a length but
 * no data is a caller bug that must not become a NULL read. */
static void wr_span(wr *w, mqtt_bytes b)
{
    if (b.len && !b.data) {
        w->bad = true;
        return;
    }
    wr_put(w, b.data, b.len);
}

static void wr_cstr(wr *w, const char *s, uint16_t n)
{
    wr_u16(w, n);
    wr_put(w, s, n);
}

/* ======================================================================== */
/* Encode: properties                                                        */
/* ======================================================================== */

/* Writes the user property entries of a raw span, skipping any other
 * property interleaved in it (see the file comment). */
static void wr_user_props(wr *w, mqtt_bytes raw)
{
    rd r = {raw.data, 0, raw.data ? raw.len : 0, NULL};
    mqtt_bytes key, val;
    int step;
    while ((step = user_props_step(&r, &key, &val)) > 0) {
        if (step == 1) {
            wr_u8(w, MQTT_PROP_USER_PROPERTY);
            wr_bin(w, key);
            wr_bin(w, val);
        }
    }
    if (step < 0)
        w->bad = true;
}

/* Writes one property that is present and allowed in `ctx`. */
static void wr_prop(wr *w, const mqtt_props *pr, uint8_t id, uint16_t ctx)
{
    const prop_row *row = &prop_rows[id];
    const char *field = (const char *)pr + row->offset;
    if (id == MQTT_PROP_USER_PROPERTY) {
        wr_user_props(w, pr->user_props);
        return;
    }
    if (id == MQTT_PROP_SUBSCRIPTION_ID) {
        unsigned n = pr->n_sub_ids > MQTT_MAX_SUB_IDS ? MQTT_MAX_SUB_IDS : pr->n_sub_ids;
        if (!(row->repeat & ctx) && n > 1)
            n = 1;
        for (unsigned i = 0; i < n; i++) {
            wr_u8(w, id);
            wr_varint(w, pr->sub_ids[i]);
        }
        return;
    }
    wr_u8(w, id);
    if (row->kind == PK_BYTE)
        wr_u8(w, *(const uint8_t *)field);
    else if (row->kind == PK_U16)
        wr_u16(w, *(const uint16_t *)field);
    else if (row->kind == PK_U32)
        wr_u32(w, *(const uint32_t *)field);
    else
        wr_bin(w, *(const mqtt_bytes *)field);
}

/* The properties of pr allowed in `ctx`, in id order. */
static void wr_props_body(wr *w, const mqtt_props *pr, uint16_t ctx)
{
    for (uint8_t id = 1; id < 64; id++) {
        if ((pr->present & MQTT_PROP_BIT(id)) && (prop_rows[id].where & ctx))
            wr_prop(w, pr, id, ctx);
    }
}

/* Size of the properties themselves, without their length prefix. */
static size_t props_size(const mqtt_props *pr, uint16_t ctx, bool *bad)
{
    wr c = {NULL, 0, 0, false};
    wr_props_body(&c, pr, ctx);
    if (c.bad)
        *bad = true;
    return c.n;
}

/* A full property block: length, then the properties. */
static void wr_props(wr *w, const mqtt_props *pr, uint16_t ctx)
{
    size_t n = props_size(pr, ctx, &w->bad);
    wr_varint(w, n);
    wr_props_body(w, pr, ctx);
}

/* ======================================================================== */
/* Encode: per packet                                                        */
/* ======================================================================== */

static void enc_connect(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_connect *c = &p->u.connect;
    bool v5 = version == MQTT_V5;
    uint8_t cf = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->has_username ? 0x80 : 0) |
                           (c->has_password ? 0x40 : 0));
    if (c->will)
        cf |= (uint8_t)(0x04 | ((c->will_qos & 3) << 3) | (c->will_retain ? 0x20 : 0));
    if (!v5 && c->has_password && !c->has_username)
        w->bad = true;
    if (c->will && c->will_qos > 2)
        w->bad = true;
    wr_cstr(w, "MQTT", 4);
    wr_u8(w, version);
    wr_u8(w, cf);
    wr_u16(w, c->keep_alive);
    if (v5)
        wr_props(w, &c->props, IN(MQTT_CONNECT));
    wr_bin(w, c->client_id);
    if (c->will) {
        if (v5)
            wr_props(w, &c->will_props, WILL);
        wr_bin(w, c->will_topic);
        wr_bin(w, c->will_payload);
    }
    if (c->has_username)
        wr_bin(w, c->username);
    if (c->has_password)
        wr_bin(w, c->password);
}

static void enc_connack(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_connack *c = &p->u.connack;
    wr_u8(w, c->session_present ? 1 : 0);
    wr_u8(w, c->reason);
    if (version == MQTT_V5)
        wr_props(w, &c->props, IN(MQTT_CONNACK));
}

static void enc_publish(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_publish *pb = &p->u.publish;
    if (pb->qos > 2)
        w->bad = true;
    *flags = (uint8_t)((pb->dup ? 0x08 : 0) | ((pb->qos & 3) << 1) | (pb->retain ? 1 : 0));
    wr_bin(w, pb->topic);
    if (pb->qos)
        wr_u16(w, pb->packet_id);
    if (version == MQTT_V5)
        wr_props(w, &pb->props, IN(MQTT_PUBLISH));
    wr_span(w, pb->payload);
}

/* The optional reason code and properties of 5.0 acks, DISCONNECT, AUTH:
 * both left out when they say nothing, the properties alone when only the
 * reason says something. */
static void wr_reason_props(wr *w, uint8_t reason, const mqtt_props *pr, uint16_t ctx)
{
    size_t n = props_size(pr, ctx, &w->bad);
    if (reason == 0 && n == 0)
        return;
    wr_u8(w, reason);
    if (n == 0)
        return;
    wr_varint(w, n);
    wr_props_body(w, pr, ctx);
}

static void enc_ack(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_ack *a = &p->u.ack;
    wr_u16(w, a->packet_id);
    if (version == MQTT_V5)
        wr_reason_props(w, a->reason, &a->props, IN(p->type));
}

static void enc_disconnect(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_disconnect *d = &p->u.disconnect;
    if (version == MQTT_V5)
        wr_reason_props(w, d->reason, &d->props, IN(p->type));
}

static void enc_empty(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags) {}

static void enc_subscribe(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_subscribe *s = &p->u.subscribe;
    rd r = {s->entries.data, 0, s->entries.data ? s->entries.len : 0, NULL};
    wr_u16(w, s->packet_id);
    if (version == MQTT_V5)
        wr_props(w, &s->props, IN(MQTT_SUBSCRIBE));
    /* Entries are rewritten rather than copied so that 3.1.1 gets only the
     * QoS bits of each options byte. */
    while (r.pos < r.end) {
        mqtt_bytes filter;
        uint8_t o;
        if (rd_bin(&r, &filter) || rd_u8(&r, &o)) {
            w->bad = true;
            return;
        }
        wr_bin(w, filter);
        wr_u8(w, version == MQTT_V5 ? o : MQTT_SUBOPT_QOS(o));
    }
}

static void enc_unsubscribe(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_unsubscribe *u = &p->u.unsubscribe;
    rd r = {u->entries.data, 0, u->entries.data ? u->entries.len : 0, NULL};
    wr_u16(w, u->packet_id);
    if (version == MQTT_V5)
        wr_props(w, &u->props, IN(MQTT_UNSUBSCRIBE));
    while (r.pos < r.end) {
        mqtt_bytes filter;
        if (rd_bin(&r, &filter)) {
            w->bad = true;
            return;
        }
        wr_bin(w, filter);
    }
}

static void enc_suback(wr *w, const mqtt_packet *p, uint8_t version, uint8_t *flags)
{
    const mqtt_suback *s = &p->u.suback;
    wr_u16(w, s->packet_id);
    if (version == MQTT_V311 && p->type == MQTT_UNSUBACK)
        return;
    if (version == MQTT_V5)
        wr_props(w, &s->props, IN(p->type));
    wr_span(w, s->reasons);
}

/* The body encoder of p's type, or NULL when p cannot be encoded in
 * `version` at all. */
static const packet_row *encodable(const mqtt_packet *p, uint8_t version)
{
    if (!p || (version != MQTT_V311 && version != MQTT_V5))
        return NULL;
    if ((unsigned)p->type > 15 || !packet_rows[p->type].encode)
        return NULL;
    if (version < packet_rows[p->type].min_version)
        return NULL;
    return &packet_rows[p->type];
}

/* Size of p's body (everything after the remaining length) and its
 * fixed-header flags, by running the body encoder without a buffer; 0 with
 * *ok false when it cannot be encoded. */
static size_t body_size(const mqtt_packet *p, const packet_row *row, uint8_t version,
                        uint8_t *flags, bool *ok)
{
    wr c = {NULL, 0, 0, false};
    *flags = row->flags;
    row->encode(&c, p, version, flags);
    *ok = !c.bad && c.n <= MQTT_MAX_REMAINING;
    return c.n;
}

size_t mqtt_encoded_size(const mqtt_packet *p, uint8_t version)
{
    const packet_row *row = encodable(p, version);
    uint8_t flags;
    bool ok;
    if (!row)
        return 0;
    size_t n = body_size(p, row, version, &flags, &ok);
    return ok ? 1 + mqtt_varint_size((uint32_t)n) + n : 0;
}

size_t mqtt_encode(const mqtt_packet *p, uint8_t version, uint8_t *out, size_t cap)
{
    const packet_row *row = encodable(p, version);
    uint8_t flags;
    bool ok;
    if (!row || !out)
        return 0;
    size_t n = body_size(p, row, version, &flags, &ok);
    size_t total = 1 + mqtt_varint_size((uint32_t)n) + n;
    if (!ok || cap < total)
        return 0;
    wr w = {out, 0, cap, false};
    wr_u8(&w, (uint8_t)((p->type << 4) | (flags & 0x0F)));
    wr_varint(&w, n);
    row->encode(&w, p, version, &flags);
    /* The second run must agree with the first; anything else is a bug in
     * a body encoder, and a short packet must never reach the wire. */
    if (w.bad || w.n != total)
        return 0;
    return total;
}
