"""mqttraw -- a small MQTT 3.1.1 / 5.0 packet builder and parser for
byte-exact broker tests (in the spirit of Mosquitto's test/mosq_test.py).

Builders return complete packets (fixed header included) as bytes, so a test
can send them as they are, truncate them, or flip a bit in them. The parser
turns bytes read from a socket into a `Packet` with the decoded fields of the
packet types a broker sends. `Conn` is a blocking socket with deadlines:
every read waits at most a given number of seconds, never forever.

Protocol versions are the protocol levels carried in CONNECT: 4 is 3.1.1 and
5 is 5.0. Builders take `v=4` or `v=5`; MQTT 5 only fields are left out for 4.
"""

import select
import socket
import struct
import time

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
    11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5 reason codes the tests name.
RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_IMPL_SPECIFIC = 0x83
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_NOT_AUTHORIZED = 0x87
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95

# ---------------------------------------------------------------------------
# Primitive encodings
# ---------------------------------------------------------------------------


def varint(n):
    """Variable byte integer (spec 1.5.5), at most 4 bytes."""
    if not 0 <= n <= 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def binary(b):
    """Two-byte length followed by the bytes (also used for raw UTF-8 data)."""
    if isinstance(b, str):
        b = b.encode("utf-8")
    return u16(len(b)) + b


def string(s):
    """UTF-8 encoded string. Pass bytes to send arbitrary (even invalid) data."""
    return binary(s)


def fixed(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


# ---------------------------------------------------------------------------
# MQTT 5 properties
# ---------------------------------------------------------------------------

# name: (identifier, kind). Kinds: byte, u16, u32, varint, str, bin, pair.
PROPS = {
    "payload_format": (0x01, "byte"),
    "message_expiry": (0x02, "u32"),
    "content_type": (0x03, "str"),
    "response_topic": (0x08, "str"),
    "correlation_data": (0x09, "bin"),
    "subscription_id": (0x0B, "varint"),
    "session_expiry": (0x11, "u32"),
    "assigned_client_id": (0x12, "str"),
    "server_keep_alive": (0x13, "u16"),
    "auth_method": (0x15, "str"),
    "auth_data": (0x16, "bin"),
    "request_problem_info": (0x17, "byte"),
    "will_delay": (0x18, "u32"),
    "request_response_info": (0x19, "byte"),
    "response_info": (0x1A, "str"),
    "server_reference": (0x1C, "str"),
    "reason_string": (0x1F, "str"),
    "receive_maximum": (0x21, "u16"),
    "topic_alias_maximum": (0x22, "u16"),
    "topic_alias": (0x23, "u16"),
    "maximum_qos": (0x24, "byte"),
    "retain_available": (0x25, "byte"),
    "user_property": (0x26, "pair"),
    "maximum_packet_size": (0x27, "u32"),
    "wildcard_sub_available": (0x28, "byte"),
    "sub_id_available": (0x29, "byte"),
    "shared_sub_available": (0x2A, "byte"),
}
PROP_BY_ID = {ident: (name, kind) for name, (ident, kind) in PROPS.items()}
# Properties that may appear more than once; decoded as lists.
REPEATABLE = {"user_property", "subscription_id"}


def _encode_value(kind, value):
    if kind == "byte":
        return bytes([value])
    if kind == "u16":
        return u16(value)
    if kind == "u32":
        return u32(value)
    if kind == "varint":
        return varint(value)
    if kind in ("str", "bin"):
        return binary(value)
    if kind == "pair":
        return string(value[0]) + string(value[1])
    raise ValueError(kind)


def props(p=None):
    """Encodes a property block (length + properties) from a dict.

    Values of repeatable properties are lists (user_property: list of
    (key, value) pairs, kept in order). A list of (name, value) tuples is
    accepted too, to produce duplicates or a chosen order."""
    if p is None:
        return varint(0)
    items = p.items() if isinstance(p, dict) else p
    body = bytearray()
    for name, value in items:
        ident, kind = PROPS[name]
        values = value if (name in REPEATABLE and isinstance(value, list)) else [value]
        for v in values:
            body += bytes([ident]) + _encode_value(kind, v)
    return varint(len(body)) + bytes(body)


def read_varint(buf, pos):
    """Returns (value, new position). Raises ValueError on a bad varint."""
    mult, value = 1, 0
    for i in range(4):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult *= 128
    raise ValueError("varint longer than 4 bytes")


def _read_bin(buf, pos):
    if pos + 2 > len(buf):
        raise ValueError("truncated length")
    n = struct.unpack_from("!H", buf, pos)[0]
    pos += 2
    if pos + n > len(buf):
        raise ValueError("truncated data")
    return bytes(buf[pos:pos + n]), pos + n


def decode_props(buf, pos):
    """Decodes a property block at `pos`; returns (dict, new position)."""
    length, pos = read_varint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ValueError("property block overruns the packet")
    out = {}
    while pos < end:
        ident, pos = read_varint(buf, pos)
        if ident not in PROP_BY_ID:
            raise ValueError("unknown property 0x%02x" % ident)
        name, kind = PROP_BY_ID[ident]
        if kind == "byte":
            v = buf[pos]
            pos += 1
        elif kind == "u16":
            v = struct.unpack_from("!H", buf, pos)[0]
            pos += 2
        elif kind == "u32":
            v = struct.unpack_from("!I", buf, pos)[0]
            pos += 4
        elif kind == "varint":
            v, pos = read_varint(buf, pos)
        elif kind == "str":
            raw, pos = _read_bin(buf, pos)
            v = raw.decode("utf-8")
        elif kind == "bin":
            v, pos = _read_bin(buf, pos)
        else:
            k, pos = _read_bin(buf, pos)
            val, pos = _read_bin(buf, pos)
            v = (k.decode("utf-8"), val.decode("utf-8"))
        if name in REPEATABLE:
            out.setdefault(name, []).append(v)
        elif name in out:
            raise ValueError("duplicate property %s" % name)
        else:
            out[name] = v
    if pos != end:
        raise ValueError("property overruns its block")
    return out, pos


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def connect(client_id="", v=V311, clean=True, keepalive=60, will=None,
            username=None, password=None, properties=None,
            proto_name="MQTT", proto_level=None, flags_extra=0):
    """CONNECT. `will` is a dict: topic, payload, qos=0, retain=False and,
    for 5.0, properties. `proto_name`/`proto_level` override the protocol
    name and level for negative tests; `flags_extra` is OR-ed into the
    connect flags (bit 0 is the reserved bit)."""
    level = v if proto_level is None else proto_level
    flags = flags_extra
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    body = string(proto_name) + bytes([level, flags]) + u16(keepalive)
    if v == V5:
        body += props(properties)
    body += string(client_id)
    if will is not None:
        if v == V5:
            body += props(will.get("properties"))
        body += string(will["topic"]) + binary(will.get("payload", b""))
    if username is not None:
        body += string(username)
    if password is not None:
        body += binary(password)
    return fixed(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, mid=None,
            v=V311, properties=None):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = string(topic)
    if qos > 0:
        body += u16(mid if mid is not None else 1)
    if v == V5:
        body += props(properties)
    return fixed(PUBLISH, flags, body + payload)


def _ack(ptype, flags, mid, v, rc, properties):
    body = u16(mid)
    if v == V5 and (rc != 0 or properties):
        body += bytes([rc])
        if properties:
            body += props(properties)
    return fixed(ptype, flags, body)


def puback(mid, v=V311, rc=0, properties=None):
    return _ack(PUBACK, 0, mid, v, rc, properties)


def pubrec(mid, v=V311, rc=0, properties=None):
    return _ack(PUBREC, 0, mid, v, rc, properties)


def pubrel(mid, v=V311, rc=0, properties=None):
    return _ack(PUBREL, 0x02, mid, v, rc, properties)


def pubcomp(mid, v=V311, rc=0, properties=None):
    return _ack(PUBCOMP, 0, mid, v, rc, properties)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return (qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0)
            | (retain_handling << 4))


def subscribe(mid, filters, v=V311, properties=None):
    """`filters`: a filter string, or a list of (filter, options byte) pairs
    (for 3.1.1 the options byte is the requested QoS)."""
    if isinstance(filters, str):
        filters = [(filters, 0)]
    body = u16(mid)
    if v == V5:
        body += props(properties)
    for f, opts in filters:
        body += string(f) + bytes([opts])
    return fixed(SUBSCRIBE, 0x02, body)


def unsubscribe(mid, filters, v=V311, properties=None):
    if isinstance(filters, str):
        filters = [filters]
    body = u16(mid)
    if v == V5:
        body += props(properties)
    for f in filters:
        body += string(f)
    return fixed(UNSUBSCRIBE, 0x02, body)


def pingreq():
    return b"\xc0\x00"


def pingresp():
    return b"\xd0\x00"


def disconnect(v=V311, rc=0, properties=None):
    if v == V5 and (rc != 0 or properties):
        body = bytes([rc]) + (props(properties) if properties else b"")
        return fixed(DISCONNECT, 0, body)
    return b"\xe0\x00"


def connack(session_present=False, rc=0, v=V311, properties=None):
    body = bytes([1 if session_present else 0, rc])
    if v == V5:
        body += props(properties)
    return fixed(CONNACK, 0, body)


def suback(mid, codes, v=V311, properties=None):
    body = u16(mid)
    if v == V5:
        body += props(properties)
    return fixed(SUBACK, 0, body + bytes(codes))


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


class Packet:
    """One packet read from the broker. `raw` is every byte of it; `type`,
    `flags` and the decoded fields depend on the packet type:

    CONNACK: session_present, rc, props
    PUBLISH: topic, mid, payload, qos, dup, retain, props
    PUBACK/PUBREC/PUBREL/PUBCOMP: mid, rc, props
    SUBACK/UNSUBACK: mid, codes, props
    DISCONNECT: rc, props
    """

    def __init__(self, raw, v):
        self.raw = bytes(raw)
        self.type = raw[0] >> 4
        self.flags = raw[0] & 0x0F
        _, pos = read_varint(raw, 1)
        self.body = self.raw[pos:]
        self.props = {}
        self.rc = 0
        self._decode(v)

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "?")

    def _decode(self, v):
        b = self.body
        t = self.type
        if t == CONNACK:
            self.session_present = bool(b[0] & 1)
            self.rc = b[1]
            if len(b) > 2:
                self.props, _ = decode_props(b, 2)
        elif t == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.dup = bool(self.flags & 8)
            self.retain = bool(self.flags & 1)
            topic, pos = _read_bin(b, 0)
            self.topic = topic.decode("utf-8")
            self.mid = None
            if self.qos:
                self.mid = struct.unpack_from("!H", b, pos)[0]
                pos += 2
            if v == V5:
                self.props, pos = decode_props(b, pos)
            self.payload = b[pos:]
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.mid = struct.unpack_from("!H", b, 0)[0]
            if len(b) > 2:
                self.rc = b[2]
            if len(b) > 3:
                self.props, _ = decode_props(b, 3)
        elif t in (SUBACK, UNSUBACK):
            self.mid = struct.unpack_from("!H", b, 0)[0]
            pos = 2
            if v == V5:
                self.props, pos = decode_props(b, pos)
            self.codes = list(b[pos:])
        elif t == DISCONNECT:
            if len(b) > 0:
                self.rc = b[0]
            if len(b) > 1:
                self.props, _ = decode_props(b, 1)

    def __repr__(self):
        return "<%s %s>" % (self.name, self.raw.hex(" "))


class Closed(Exception):
    """The broker closed the connection (EOF or reset)."""


class Timeout(Exception):
    """Nothing (or not enough) arrived before the deadline."""


class Conn:
    """A raw MQTT connection to the broker under test.

    Reads keep partial data between calls, so a packet split across TCP
    segments is reassembled; every read takes a timeout in seconds.
    """

    def __init__(self, port, v=V311, host="127.0.0.1", timeout=5.0):
        self.v = v
        self.buf = bytearray()
        # PUBLISH packets read by a helper while it waited for an ack (the
        # broker may deliver a message before acknowledging the one that
        # caused it); recv_publish takes them first.
        self.stash = []
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into buf; raises Closed or Timeout."""
        if self.closed:
            raise Closed()
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise Timeout()
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.closed = True
            raise Closed()
        self.buf += data

    def _frame_len(self):
        """Length of the first complete packet in buf, or 0 if incomplete."""
        if len(self.buf) < 2:
            return 0
        try:
            n, pos = read_varint(self.buf, 1)
        except ValueError as e:
            if "truncated" in str(e):
                return 0
            raise
        if len(self.buf) < pos + n:
            return 0
        return pos + n

    def read(self, timeout=5.0):
        """The next packet. Raises Timeout or Closed (the latter only when no
        complete packet is buffered)."""
        deadline = time.monotonic() + timeout
        while True:
            n = self._frame_len()
            if n:
                raw = bytes(self.buf[:n])
                del self.buf[:n]
                return Packet(raw, self.v)
            self._fill(deadline)

    def expect(self, ptype, timeout=5.0):
        """The next packet, which must be of type `ptype`."""
        p = self.read(timeout)
        assert p.type == ptype, "expected %s, got %r" % (TYPE_NAMES[ptype], p)
        return p

    def _expect_ack(self, ptype, timeout):
        """Like expect, but PUBLISH packets read meanwhile go to the stash."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.read(max(0.0, deadline - time.monotonic()))
            if p.type == PUBLISH:
                self.stash.append(p)
                continue
            assert p.type == ptype, "expected %s, got %r" % (TYPE_NAMES[ptype], p)
            return p

    def expect_bytes(self, expected, timeout=5.0):
        """The next packet, which must be exactly `expected`."""
        p = self.read(timeout)
        assert p.raw == expected, "expected %s, got %s" % (expected.hex(" "), p.raw.hex(" "))
        return p

    def wait_closed(self, timeout=5.0):
        """Reads until the broker closes the connection and returns every
        packet that came before the close. Raises Timeout if the connection
        is still open at the deadline."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.read(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got

    def is_open(self):
        return not self.closed

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP RST instead of a FIN (an abnormal disconnect)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    # --- conveniences for the common handshakes --------------------------

    def connect(self, client_id="", clean=True, keepalive=60, will=None,
                properties=None, expect_rc=0, timeout=5.0, **kw):
        """Sends CONNECT and returns the CONNACK, checking its code."""
        self.send(connect(client_id, v=self.v, clean=clean, keepalive=keepalive,
                          will=will, properties=properties, **kw))
        p = self.expect(CONNACK, timeout)
        assert p.rc == expect_rc, "CONNACK code 0x%02x, expected 0x%02x" % (p.rc, expect_rc)
        return p

    def subscribe(self, mid, filters, properties=None, timeout=5.0):
        """Sends SUBSCRIBE and returns the SUBACK's reason codes."""
        self.send(subscribe(mid, filters, v=self.v, properties=properties))
        p = self._expect_ack(SUBACK, timeout)
        assert p.mid == mid, "SUBACK for packet id %d, expected %d" % (p.mid, mid)
        return p.codes

    def publish(self, topic, payload=b"", qos=0, retain=False, mid=1, properties=None,
                timeout=5.0):
        """Publishes and completes the QoS flow; returns the final ack (PUBACK
        for QoS 1, PUBCOMP for QoS 2) or None for QoS 0."""
        self.send(publish(topic, payload, qos=qos, retain=retain, mid=mid, v=self.v,
                          properties=properties))
        if qos == 1:
            p = self._expect_ack(PUBACK, timeout)
            assert p.mid == mid
            return p
        if qos == 2:
            p = self._expect_ack(PUBREC, timeout)
            assert p.mid == mid
            self.send(pubrel(mid, v=self.v))
            p = self._expect_ack(PUBCOMP, timeout)
            assert p.mid == mid
            return p
        return None

    def recv_publish(self, timeout=5.0, ack=True):
        """Reads the next PUBLISH and, if `ack`, acknowledges it (PUBACK, or
        PUBREC + PUBREL/PUBCOMP for QoS 2)."""
        p = self.stash.pop(0) if self.stash else self.expect(PUBLISH, timeout)
        if ack and p.qos == 1:
            self.send(puback(p.mid, v=self.v))
        elif ack and p.qos == 2:
            self.send(pubrec(p.mid, v=self.v))
            rel = self._expect_ack(PUBREL, timeout)
            assert rel.mid == p.mid
            self.send(pubcomp(p.mid, v=self.v))
        return p

    def ping(self, timeout=5.0):
        self.send(pingreq())
        self.expect_bytes(pingresp(), timeout)
