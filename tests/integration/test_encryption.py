"""Encryption at rest: stream segments and the MQTT snapshot.

Records and retained messages with known plaintext are written through the
real doors (HTTP and MQTT), the node is stopped, and the files of the data
directory are searched byte for byte for that plaintext. Then the node is
started again with the key (everything reads back), without it and with
another key (it refuses, saying why), and `weir check` runs with and
without the key.
"""
import glob
import os
import subprocess

import pytest

from conftest import Broker, free_port, http_get, wait_for, WAIT
import mqttraw

requests = pytest.importorskip("requests")

SECRET_VALUE = "SECRET-VALUE-7f3a91"
SECRET_RETAINED = b"RETAINED-PAYLOAD-c0ffee"


def weir_bin():
    b = os.environ.get("WEIR_BIN")
    if not b:
        pytest.skip("WEIR_BIN not set")
    return b


def keygen(path):
    r = subprocess.run([weir_bin(), "keygen", path], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return path


def files_containing(root, needle):
    hits = []
    for path in glob.glob(os.path.join(root, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                if needle in f.read():
                    hits.append(path)
    return hits


def write_data(b):
    base = "http://127.0.0.1:%d/api/v1/streams" % b.http_port
    r = requests.post(base, json={"name": "plant"}, timeout=WAIT)
    assert r.status_code in (200, 201), r.text
    for i in range(50):
        r = requests.post(base + "/plant/records",
                          json={"machine": "m%d" % i, "note": SECRET_VALUE, "n": i},
                          timeout=WAIT)
        assert r.status_code in (200, 201, 202), r.text
    c = mqttraw.Conn(b.port)
    c.connect("retainer")
    c.send(mqttraw.publish("cfg/secret", SECRET_RETAINED, qos=0, retain=True))
    c.send(mqttraw.disconnect())
    c.close()


def read_records(b):
    r = requests.get("http://127.0.0.1:%d/api/v1/streams/plant/records?offset=0&limit=1000"
                     % b.http_port, timeout=WAIT)
    assert r.status_code == 200, r.text
    return r.json()["records"]


def start_fails(data_dir, key=None):
    args = [weir_bin(), "serve", "--data", data_dir, "--mqtt", "127.0.0.1:%d" % free_port(),
            "--http", "127.0.0.1:%d" % free_port()]
    if key:
        args += ["--set", "storage.encryption_key_file=" + key]
    r = subprocess.run(args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def check(data_dir, key=None):
    args = [weir_bin(), "check"] + (["--key", key] if key else []) + [data_dir]
    r = subprocess.run(args, capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def test_encrypted_data_is_unreadable_without_the_key(make_broker, tmp_path):
    key = keygen(str(tmp_path / "weir.key"))
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    b = make_broker({"storage.encryption_key_file": key})
    write_data(b)
    assert len(read_records(b)) == 50
    b.stop()

    # The plaintext is nowhere on disk: not in segments, not in the snapshot.
    assert files_containing(b.data_dir, SECRET_VALUE.encode()) == []
    assert files_containing(b.data_dir, SECRET_RETAINED) == []
    segs = glob.glob(os.path.join(b.data_dir, "streams", "plant", "*", "*.log"))
    assert segs and all(os.path.getsize(s) > 0 for s in segs)

    # With the key everything reads back.
    b.start(new_ports=False)
    recs = read_records(b)
    assert [r["fields"]["note"] for r in recs] == [SECRET_VALUE] * 50
    assert sorted(r["fields"]["n"] for r in recs) == list(range(50))
    c = mqttraw.Conn(b.port)
    c.connect("reader")
    assert c.subscribe(1, [("cfg/#", 0)]) == [0]
    p = c.read(WAIT)
    assert (p.topic, p.payload) == ("cfg/secret", SECRET_RETAINED)
    c.close()
    b.stop()

    # weir check: with the key everything is decrypted and verified.
    rc, out = check(b.data_dir, key)
    assert rc == 0, out
    assert "sealed batches decrypted and verified" in out
    # Without the key it checks the CRCs and says what it could not verify.
    rc, out = check(b.data_dir)
    assert rc == 0, out
    assert "checked by CRC only" in out


def test_missing_or_wrong_key_is_refused_clearly(make_broker, tmp_path):
    key = keygen(str(tmp_path / "k1"))
    other = keygen(str(tmp_path / "k2"))
    b = make_broker({"storage.encryption_key_file": key, "mqtt.persistence": "false"})
    write_data(b)
    b.stop()

    log = start_fails(b.data_dir)
    assert "encrypted at rest and no key is configured" in log
    log = start_fails(b.data_dir, other)
    assert "wrong encryption key" in log
    rc, out = check(b.data_dir, other)
    assert rc == 1 and "wrong encryption key" in out
    # Nothing was damaged by those attempts.
    b.start(new_ports=False)
    assert len(read_records(b)) == 50


def test_bad_key_file_is_refused(tmp_path):
    bad = tmp_path / "short.key"
    bad.write_bytes(b"too short")
    log = start_fails(str(tmp_path / "d"), str(bad))
    assert "must hold 32 raw bytes or 64 hex digits" in log
    r = subprocess.run([weir_bin(), "keygen", str(bad)], capture_output=True, timeout=30)
    assert r.returncode != 0  # never overwrites a key


def test_hex_key_and_urandom_key_work(make_broker, tmp_path):
    raw = tmp_path / "raw.key"
    raw.write_bytes(os.urandom(32))  # head -c 32 /dev/urandom
    os.chmod(raw, 0o600)
    hexkey = tmp_path / "hex.key"
    hexkey.write_text(raw.read_bytes().hex() + "\n")
    b = make_broker({"storage.encryption_key_file": str(raw)})
    write_data(b)
    b.stop()
    # The same key written as hex opens the same store.
    b.config["storage.encryption_key_file"] = str(hexkey)
    b.start(new_ports=False)
    assert len(read_records(b)) == 50
