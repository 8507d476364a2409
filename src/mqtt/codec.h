/* codec.h -- MQTT 3.1.1 and 5.0 packets: framing, decoding, encoding.
 *
 * Pure functions, no I/O and no allocation: the codec is what a hostile peer
 * talks to first, so it is small, total and fuzzed (tests/fuzz/fuzz_codec.c).
 *
 * Decoding is zero-copy. A decoded mqtt_packet points into the caller's
 * packet bytes (every mqtt_bytes field), so it is valid only while those
 * bytes are. Lists whose length the peer chooses (SUBSCRIBE filters,
 * UNSUBSCRIBE filters, SUBACK/UNSUBACK reason codes, MQTT 5 user properties)
 * are kept as the raw validated span and walked with an iterator; the decoder
 * has already checked every element, so iteration cannot fail.
 *
 * The decoder enforces everything the specification makes a property of the
 * bytes alone: fixed-header flags, remaining length (at most 4 bytes, minimal
 * form not required by the spec so not enforced), string lengths, UTF-8
 * well-formedness and the absence of U+0000 in every UTF-8 string, property
 * identifiers allowed per packet type, duplicate properties, QoS 3, packet id
 * 0 where one is required, empty subscription lists, reserved bits. What
 * depends on session state (topic aliases, receive maximum, whether a packet
 * is allowed at this point) is the broker's job.
 *
 * Errors: WEIR_EMALFORMED (0x81 Malformed Packet), WEIR_EPROTO (0x82 Protocol
 * Error), WEIR_EVERSION (unknown protocol name or level in CONNECT),
 * WEIR_ETOOBIG (remaining length over the caller's maximum), WEIR_ETOPIC
 * (a topic name with wildcards or an empty one without an alias, a bad
 * filter), WEIR_EUTF8 (bad UTF-8 or U+0000; 5.0 maps it to 0x81 too),
 * WEIR_EAGAIN (framing: not enough bytes yet). On error `*why`, when the
 * caller passes it, points at a static sentence for the log.
 *
 * Encoding writes a complete packet (fixed header included) for the given
 * protocol version; MQTT 5 only fields are silently left out for 3.1.1.
 * mqtt_encoded_size tells the exact size first so a caller can reserve once.
 */
#ifndef WEIR_MQTT_CODEC_H
#define WEIR_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol levels as carried in CONNECT. */
#define MQTT_V311 4
#define MQTT_V5 5

/* Largest remaining length the 4-byte varint can carry (256 MiB - 1). */
#define MQTT_MAX_REMAINING 268435455u

typedef enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
} mqtt_type;

/* A byte span inside packet bytes (decode) or caller memory (encode). A
 * NULL data with len 0 means "absent". */
typedef struct mqtt_bytes {
    const uint8_t *data;
    uint32_t len;
} mqtt_bytes;

/* MQTT 5 property identifiers (spec 2.2.2.2). */
enum {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER_PROPERTY = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* Bit for property id `id` in mqtt_props.present. Ids are below 64. */
#define MQTT_PROP_BIT(id) (1ull << (id))

/* Most subscription identifiers one outgoing PUBLISH carries. */
#define MQTT_MAX_SUB_IDS 16

/* All MQTT 5 properties of one packet. A field is meaningful only when its
 * bit is set in `present`. User properties (repeatable) are kept as the raw
 * encoded property bytes, each entry 0x26 + string key + string value, so
 * that forwarding them is one copy; walk them with mqtt_user_props_next and
 * build them with mqtt_user_prop_append. */
typedef struct mqtt_props {
    uint64_t present;             /* MQTT_PROP_BIT(id) for each id present */
    uint8_t payload_format;       /* 0 unspecified bytes, 1 UTF-8 */
    uint32_t message_expiry;      /* seconds */
    mqtt_bytes content_type;      /* UTF-8 */
    mqtt_bytes response_topic;    /* UTF-8 topic name */
    mqtt_bytes correlation_data;  /* binary */
    uint32_t sub_ids[MQTT_MAX_SUB_IDS]; /* 1..268435455 */
    uint8_t n_sub_ids;            /* SUBSCRIBE: at most 1; PUBLISH out: many */
    uint32_t session_expiry;      /* seconds; 0xFFFFFFFF never expires */
    mqtt_bytes assigned_client_id;
    uint16_t server_keep_alive;
    mqtt_bytes auth_method;
    mqtt_bytes auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay;
    uint8_t request_response_info;
    mqtt_bytes response_info;
    mqtt_bytes server_reference;
    mqtt_bytes reason_string;
    uint16_t receive_maximum;     /* never 0 when present */
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;         /* never 0 when present */
    uint8_t maximum_qos;          /* 0 or 1 */
    uint8_t retain_available;
    uint32_t maximum_packet_size; /* never 0 when present */
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    mqtt_bytes user_props;        /* raw 0x26 entries, see above */
} mqtt_props;

typedef struct mqtt_connect {
    uint8_t version;          /* MQTT_V311 or MQTT_V5 */
    bool clean_start;         /* "clean session" in 3.1.1 */
    uint16_t keep_alive;      /* seconds; 0 disables */
    mqtt_props props;
    mqtt_bytes client_id;     /* may be empty */
    bool will;                /* will flag */
    uint8_t will_qos;
    bool will_retain;
    mqtt_props will_props;    /* 5.0 only */
    mqtt_bytes will_topic;
    mqtt_bytes will_payload;
    bool has_username;
    mqtt_bytes username;
    bool has_password;
    mqtt_bytes password;
} mqtt_connect;

typedef struct mqtt_connack {
    bool session_present;
    uint8_t reason;           /* 3.1.1 return code or 5.0 reason code */
    mqtt_props props;
} mqtt_connack;

typedef struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    mqtt_bytes topic;         /* may be empty in 5.0 when a topic alias is set */
    uint16_t packet_id;       /* 0 for QoS 0 */
    mqtt_props props;
    mqtt_bytes payload;
} mqtt_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 the reason code and properties
 * are optional on the wire; decoding fills reason 0 when absent, encoding
 * leaves them out when reason is 0 and no property is present. */
typedef struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason;
    mqtt_props props;
} mqtt_ack;

/* Subscription options byte (5.0 3.8.3.1; 3.1.1 uses only the QoS bits). */
#define MQTT_SUBOPT_QOS(o) ((o) & 0x03)
#define MQTT_SUBOPT_NO_LOCAL 0x04
#define MQTT_SUBOPT_RAP 0x08          /* retain as published */
#define MQTT_SUBOPT_RH(o) (((o) >> 4) & 0x03) /* retain handling 0..2 */

typedef struct mqtt_subscribe {
    uint16_t packet_id;
    mqtt_props props;         /* subscription identifier, user properties */
    mqtt_bytes entries;       /* raw list; walk with mqtt_sub_next */
    uint32_t n_entries;       /* at least 1 */
} mqtt_subscribe;

typedef struct mqtt_sub_entry {
    mqtt_bytes filter;
    uint8_t options;          /* MQTT_SUBOPT_* */
} mqtt_sub_entry;

typedef struct mqtt_unsubscribe {
    uint16_t packet_id;
    mqtt_props props;
    mqtt_bytes entries;       /* raw list of filters; walk with mqtt_unsub_next */
    uint32_t n_entries;
} mqtt_unsubscribe;

/* SUBACK and UNSUBACK: one reason code per filter. 3.1.1 UNSUBACK has none
 * (reasons.len == 0). */
typedef struct mqtt_suback {
    uint16_t packet_id;
    mqtt_props props;
    mqtt_bytes reasons;
} mqtt_suback;

/* DISCONNECT and AUTH (5.0); 3.1.1 DISCONNECT is empty. */
typedef struct mqtt_disconnect {
    uint8_t reason;
    mqtt_props props;
} mqtt_disconnect;

typedef struct mqtt_packet {
    mqtt_type type;
    union {
        mqtt_connect connect;
        mqtt_connack connack;
        mqtt_publish publish;
        mqtt_ack ack;               /* PUBACK, PUBREC, PUBREL, PUBCOMP */
        mqtt_subscribe subscribe;
        mqtt_suback suback;         /* SUBACK, UNSUBACK */
        mqtt_unsubscribe unsubscribe;
        mqtt_disconnect disconnect; /* DISCONNECT, AUTH */
    } u;
} mqtt_packet;

/* ---- Framing ------------------------------------------------------------ */

/* Finds the first complete packet in buf[0..len). On WEIR_OK sets *pkt_len
 * to its total size (fixed header included). Returns WEIR_EAGAIN when more
 * bytes are needed, WEIR_EMALFORMED for a remaining length longer than four
 * bytes, and WEIR_ETOOBIG as soon as the header shows a total size above
 * max_size (before the body has arrived), so an oversize packet is refused
 * without buffering it. max_size 0 means MQTT_MAX_REMAINING + 5. */
int mqtt_frame(const uint8_t *buf, size_t len, uint32_t max_size, size_t *pkt_len);

/* ---- Decoding ----------------------------------------------------------- */

/* Decodes one complete CONNECT packet (the only packet whose version is not
 * known in advance). */
int mqtt_decode_connect(const uint8_t *pkt, size_t len, mqtt_packet *out, const char **why);

/* Decodes one complete packet of any type for protocol `version`. A CONNECT
 * is decoded too (version ignored). Packets a server never receives
 * (CONNACK, SUBACK, ...) decode as well, so the codec serves test clients. */
int mqtt_decode(const uint8_t *pkt, size_t len, uint8_t version, mqtt_packet *out,
                const char **why);

/* Iterators over validated lists. `*pos` starts at 0; each returns false at
 * the end. */
bool mqtt_sub_next(const mqtt_subscribe *s, uint32_t *pos, mqtt_sub_entry *out);
bool mqtt_unsub_next(const mqtt_unsubscribe *u, uint32_t *pos, mqtt_bytes *filter);
bool mqtt_user_props_next(mqtt_bytes raw, uint32_t *pos, mqtt_bytes *key, mqtt_bytes *val);

/* ---- Encoding ----------------------------------------------------------- */

/* Exact encoded size of `p` for `version`, fixed header included; 0 if the
 * packet cannot be encoded (remaining length over the maximum). */
size_t mqtt_encoded_size(const mqtt_packet *p, uint8_t version);

/* Writes `p` into out[0..cap). Returns the number of bytes written, or 0 when
 * cap is too small or the packet cannot be encoded. */
size_t mqtt_encode(const mqtt_packet *p, uint8_t version, uint8_t *out, size_t cap);

/* Appends one user property entry (0x26, key, value) to `dst` (capacity
 * `cap`, `*len` bytes used). Returns false when it does not fit. For building
 * mqtt_props.user_props in tests and when weir adds its own properties. */
bool mqtt_user_prop_append(uint8_t *dst, size_t cap, uint32_t *len, const char *key,
                           const char *val);

/* ---- Helpers shared with the broker ------------------------------------- */

/* True when s[0..n) is well-formed UTF-8 without U+0000 and without
 * surrogates (spec 1.5.4). Also used for the payload format indicator. */
bool mqtt_utf8_valid(const uint8_t *s, size_t n);

/* Size of the variable byte integer encoding of v (1..4), 0 if too large. */
unsigned mqtt_varint_size(uint32_t v);

/* Name of a packet type for logs and metrics ("PUBLISH"); "UNKNOWN" else. */
const char *mqtt_type_name(int type);

#endif
