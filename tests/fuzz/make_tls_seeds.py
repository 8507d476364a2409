#!/usr/bin/env python3
"""Writes seeds for fuzz_tls_session: real ClientHellos (TLS 1.3 and a TLS
1.2-only client, with and without SNI), made with Python's ssl module on
memory BIOs, each prefixed with the target's cut byte."""
import os
import ssl
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                          "fuzz_tls_session")
os.makedirs(out, exist_ok=True)


def hello(maxv, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maxv:
        ctx.maximum_version = maxv
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


for name, maxv, sni in (("tls13", None, "localhost"), ("tls12", ssl.TLSVersion.TLSv1_2, None),
                        ("tls13-nosni", None, None)):
    h = hello(maxv, sni)
    for cut in (96, 4):  # whole pieces, and 5-byte pieces
        with open(os.path.join(out, "%s-cut%d" % (name, cut)), "wb") as f:
            f.write(bytes([cut]) + h)
