#!/usr/bin/env python3
"""Writes seed scripts for fuzz_broker: chunks of [control][length][bytes]
feeding real MQTT packets to the three fake connections, so the fuzzer
starts from sessions that connect, subscribe, publish and acknowledge."""
import os, struct, sys

def varint(n):
    out = b""
    while True:
        b = n % 128; n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out

def s(x): return struct.pack(">H", len(x)) + x

def pkt(t, flags, body): return bytes([t << 4 | flags]) + varint(len(body)) + body

def connect(cid, v=5, clean=1, will=False, props=b""):
    flags = (2 if clean else 0) | (0x0C if will else 0)
    body = s(b"MQTT") + bytes([v, flags]) + struct.pack(">H", 30)
    if v == 5: body += varint(len(props)) + props
    body += s(cid)
    if will:
        if v == 5: body += b"\x00"
        body += s(b"will/t") + s(b"gone")
    return pkt(1, 0, body)

def subscribe(pid, flt, opt, v=5):
    body = struct.pack(">H", pid) + (b"\x00" if v == 5 else b"") + s(flt) + bytes([opt])
    return pkt(8, 2, body)

def publish(topic, payload, qos=0, pid=1, v=5, retain=0, props=b""):
    body = s(topic) + (struct.pack(">H", pid) if qos else b"")
    if v == 5: body += varint(len(props)) + props
    return pkt(3, qos << 1 | retain, body + payload)

def ack(t, pid, flags=0): return pkt(t, flags, struct.pack(">H", pid))

def feed(conn, data):
    out = b""
    while data:
        part, data = data[:255], data[255:]
        out += bytes([conn, len(part)]) + part
    return out

seeds = {
  "pubsub_v5": feed(0, connect(b"a")) + feed(0, subscribe(1, b"s/#", 1)) +
               feed(1, connect(b"b", v=4)) + feed(1, publish(b"s/x", b"1", 1, 5, v=4)) +
               feed(0, ack(4, 1)) + bytes([0xC0, 0]),
  "qos2": feed(0, connect(b"a", clean=0, props=b"\x11\x00\x00\x0e\x10")) +
          feed(0, subscribe(1, b"q", 2)) + feed(1, connect(b"b")) +
          feed(1, publish(b"q", b"v", 2, 7)) + feed(1, ack(6, 7, 2)) +
          feed(0, ack(5, 1)) + feed(0, ack(7, 1)) + bytes([0x80, 0]) + feed(0, connect(b"a", clean=0)),
  "shared_retain": feed(0, connect(b"a")) + feed(1, connect(b"b")) +
          feed(2, connect(b"c", will=True)) + feed(0, subscribe(1, b"$share/g/t/+", 1)) +
          feed(1, subscribe(1, b"$share/g/t/+", 1)) + feed(2, publish(b"t/1", b"x", 1, 2, retain=1)) +
          feed(2, publish(b"t/2", b"y", 0, props=b"\x23\x00\x01")) + bytes([0x82, 0, 0xC0, 0]) +
          feed(0, subscribe(2, b"t/#", 0x21)),
  "offline_queue": feed(0, connect(b"d", v=4, clean=0)) + feed(0, subscribe(1, b"x", 1, v=4)) +
          bytes([0x80, 0]) + b"".join(feed(1, (connect(b"p", v=4) if i == 0 else b"") +
          publish(b"x", b"%d" % i, 1, i + 1, v=4)) for i in range(12)) + feed(0, connect(b"d", v=4, clean=0)),
}
d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_broker")
os.makedirs(d, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(d, name), "wb").write(data)
