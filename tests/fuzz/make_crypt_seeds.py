#!/usr/bin/env python3
"""Writes seeds for fuzz_segment_crypt: plain batches (mode 2 and 3) that
the target seals with its fixed key, so mutations start from batches that
decrypt and parse."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                          "fuzz_segment_crypt")
os.makedirs(out, exist_ok=True)


def batch(records, base=0):
    body = b""
    for ts, key, value in records:
        body += struct.pack("<qqII", ts, ts + 1, len(key), len(value)) + key + value
    tss = [r[0] for r in records]
    hdr = struct.pack("<IIIHHQIIqqqQ", 0x31425357, 0, 64 + len(body), 1, 0, base, len(records),
                      0, 1700000000000000000, min(tss), max(tss), 0)
    return hdr + body


seeds = {
    "one": batch([(1, b"k", b'{"t":1}')]),
    "three": batch([(5, b"a", b"x" * 40), (3, b"", b"y"), (9, b"dev-1", b'{"v":2.5}')], base=77),
    "empty-value": batch([(0, b"", b"")]),
}
for name, b in seeds.items():
    for mode in (2, 3, 6):
        with open(os.path.join(out, "%s-m%d" % (name, mode)), "wb") as f:
            f.write(bytes([mode]) + b)
