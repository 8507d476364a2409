"""MQTT over TLS, HTTPS and WSS, client certificates, certificate reload.

A throw-away PKI is made with the openssl command line in the test's tmp
dir: a CA, a server certificate for localhost/127.0.0.1, client
certificates (one valid with CN=device-42, one self-signed, one signed by
the CA but expired -- made with `openssl ca -startdate/-enddate` in the
past, so nothing waits for a certificate to expire), and a second server
certificate for the reload test. Real clients talk to the node:
mosquitto_pub/sub, paho-mqtt (TCP and WebSocket), requests, Python's ssl.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import Broker, free_port, wait_for, WAIT

paho = pytest.importorskip("paho.mqtt.client")
requests = pytest.importorskip("requests")

MOSQ_PUB = "mosquitto_pub"
MOSQ_SUB = "mosquitto_sub"


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key_csr(d, name, cn):
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)


def _sign(d, name, ext=None):
    args = ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "30"]
    if ext:
        args += ["-extfile", ext]
    _openssl(*args, cwd=d)


class Pki:
    def __init__(self, d):
        self.d = d
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
                 "-subj", "/CN=weir test CA", cwd=d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for name, cn in (("server", "localhost"), ("server2", "localhost-v2")):
            _key_csr(d, name, cn)
            _sign(d, name, "san.ext")
        _key_csr(d, "client", "device-42")
        _sign(d, "client")
        # Self-signed: not issued by the CA the node trusts.
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "30",
                 "-subj", "/CN=rogue", cwd=d)
        # Issued by the CA, valid in January 2020 only.
        os.makedirs(os.path.join(d, "newcerts"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = cadef\n[cadef]\ndir = %s\n"
                    "database = $dir/index.txt\nnew_certs_dir = $dir/newcerts\n"
                    "certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n"
                    "serial = $dir/serial\ndefault_md = sha256\npolicy = pol\n"
                    "[pol]\ncommonName = supplied\n" % d)
        _key_csr(d, "expired", "device-old")
        _openssl("ca", "-batch", "-config", "ca.cnf", "-startdate", "20200101000000Z",
                 "-enddate", "20200131000000Z", "-in", "expired.csr", "-out", "expired.pem",
                 "-notext", cwd=d)

    def p(self, name):
        return os.path.join(self.d, name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


# ---------------------------------------------------------------------------
# A node with TLS listeners
# ---------------------------------------------------------------------------

class TlsBroker(Broker):
    """A weir node with the MQTT/TLS listener (and, with http.tls, HTTPS on
    the HTTP port). The certificate files are copies in the broker's work
    dir, so a test may replace them."""

    def __init__(self, workdir, pki, config=None):
        self.pki = pki
        self.tls_port = None
        self.cert = os.path.join(workdir, "cert.pem")
        self.key = os.path.join(workdir, "cert.key")
        for src, dst in ((pki.p("server.pem"), self.cert), (pki.p("server.key"), self.key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        cfg = {"tls.cert": self.cert, "tls.key": self.key, "tls.ca": pki.p("ca.pem")}
        cfg.update(config or {})
        super().__init__(workdir, cfg)

    @property
    def https(self):
        return self.config.get("http.tls") == "true"

    def start(self):
        # The client certificates' CN (device-42) is an identity only if such
        # a user exists (docs/security.md); made offline before the first start.
        if not getattr(self, "_device_added", False):
            self._device_added = True
            r = subprocess.run([os.environ["WEIR_BIN"], "user", "add", "device-42", "--role",
                                "admin", "--device", "--password-stdin", "--data", self.data_dir],
                               input=b"device-42-password\n", capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
        return super().start()

    def _weir_args(self):
        self.tls_port = free_port()
        return super()._weir_args() + ["--set", "mqtt.tls_listen=127.0.0.1:%d" % self.tls_port]

    def _probe(self):
        if not self.https:
            return super()._probe()
        try:
            r = requests.get("https://127.0.0.1:%d/healthz" % self.http_port,
                             verify=self.pki.p("ca.pem"), timeout=1.0,
                             cert=(self.pki.p("client.pem"), self.pki.p("client.key")))
            return r.status_code == 200
        except requests.RequestException:
            return False

    def metric(self, name):
        """Sum of the samples of a Prometheus metric (plain or HTTPS)."""
        scheme = "https" if self.https else "http"
        r = requests.get("%s://127.0.0.1:%d/metrics" % (scheme, self.http_port),
                         verify=self.pki.p("ca.pem"), timeout=WAIT,
                         cert=(self.pki.p("client.pem"), self.pki.p("client.key")))
        total = 0.0
        for line in r.text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture
def make_tls(request, tmp_path, pki):
    brokers = []
    request.node._brokers = brokers

    def make(config=None):
        workdir = tmp_path / ("tls%d" % len(brokers))
        workdir.mkdir()
        b = TlsBroker(str(workdir), pki, config)
        brokers.append(b)
        return b.start()

    yield make
    errors = []
    for b in brokers:
        try:
            b.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            b.kill()
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


def client_ctx(pki, cert=None, maxv=None, minv=None):
    ctx = ssl.create_default_context(cafile=pki.p("ca.pem"))
    if cert:
        ctx.load_cert_chain(pki.p(cert + ".pem"), pki.p(cert + ".key"))
    if maxv or minv:
        # Let the client offer what OpenSSL 3 refuses by default, so the
        # refusal tested is the server's.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if minv:
            ctx.minimum_version = minv
        if maxv:
            ctx.maximum_version = maxv
    return ctx


def handshake(port, ctx, host="localhost"):
    """Completes a TLS handshake and returns the server certificate's
    subject CN; raises ssl.SSLError / OSError when refused. With TLS 1.3 a
    refused client certificate shows only after the handshake, so it reads
    until the server closes or a second passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            # An MQTT CONNECT: a refused TLS 1.3 client learns it on read.
            s.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 5, 0, 1]) + b"x")
            s.settimeout(WAIT)
            data = s.recv(4)
            if not data:
                raise ConnectionResetError("closed by the server")
            return cn


def mosq(tool, port, pki, *args, cert=None, timeout=WAIT):
    cmd = [tool, "-h", "localhost", "-p", str(port), "--cafile", pki.p("ca.pem")]
    if cert:
        cmd += ["--cert", pki.p(cert + ".pem"), "--key", pki.p(cert + ".key")]
    return subprocess.run(cmd + list(args), capture_output=True, timeout=timeout + 5)


class Sub:
    """mosquitto_sub over TLS waiting for `count` messages."""

    def __init__(self, port, pki, topic, count=1, cert=None):
        cmd = ["stdbuf", "-oL", MOSQ_SUB, "-h", "localhost", "-p", str(port),
               "--cafile", pki.p("ca.pem"),
               "-t", topic, "-C", str(count), "-W", str(int(WAIT)), "-d"]
        if cert:
            cmd += ["--cert", pki.p(cert + ".pem"), "--key", pki.p(cert + ".key")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        wait_for(lambda: any("SUBACK" in l for l in self.lines), what="mosquitto_sub SUBACK")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    def result(self):
        self.proc.wait(WAIT + 5)
        self.t.join(WAIT)
        return [l for l in self.lines
                if not l.startswith("Client ") and not l.startswith("Subscribed")]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

def test_mosquitto_clients_over_tls(make_tls, pki):
    b = make_tls()
    sub = Sub(b.tls_port, pki, "tls/mosq")
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-t", "tls/mosq", "-m", "over tls")
    assert r.returncode == 0, r.stderr
    assert sub.result() == ["over tls"]
    # The plain listener still serves, and speaks no TLS.
    r = mosq(MOSQ_PUB, b.port, pki, "-t", "x", "-m", "y")
    assert r.returncode != 0
    # Without the CA the server is not trusted.
    r = subprocess.run([MOSQ_PUB, "-h", "localhost", "-p", str(b.tls_port), "--capath",
                        "/nonexistent", "-t", "x", "-m", "y"], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b.metric("weir_tls_handshakes_total") >= 2


def test_paho_over_tls_round_trip(make_tls, pki):
    b = make_tls()
    got = []
    c = paho.Client(client_id="paho-tls", protocol=paho.MQTTv311)
    c.tls_set_context(client_ctx(pki))
    c.on_message = lambda cl, u, m: got.append((m.topic, m.payload))
    c.connect("localhost", b.tls_port, keepalive=30)
    c.loop_start()
    try:
        subscribed = threading.Event()
        c.on_subscribe = lambda *a: subscribed.set()
        c.subscribe("paho/#", qos=1)
        assert subscribed.wait(WAIT)
        big = os.urandom(200_000)  # several TLS records in one message
        for i in range(20):
            c.publish("paho/%d" % i, b"m%d" % i, qos=1)
        c.publish("paho/big", big, qos=1)
        wait_for(lambda: len(got) == 21, what="21 messages back over TLS")
        assert got[:20] == [("paho/%d" % i, b"m%d" % i) for i in range(20)]
        assert got[20] == ("paho/big", big)
    finally:
        c.loop_stop()
        c.disconnect()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_refused(make_tls, pki):
    b = make_tls({"http.tls": "true"})
    for port in (b.tls_port, b.http_port):
        old = client_ctx(pki, cert="client", maxv=ssl.TLSVersion.TLSv1_1)
        with pytest.raises((ssl.SSLError, OSError)):
            handshake(port, old)
    # The same client allowed TLS 1.2 gets in: the refusal was the version.
    ok = client_ctx(pki, cert="client", maxv=ssl.TLSVersion.TLSv1_2)
    assert handshake(b.tls_port, ok) == "localhost"
    wait_for(lambda: 'error="unsupported protocol"' in b.read_log(), what="handshake failure log")
    assert b.metric('weir_tls_handshakes_total{result="failed"}') >= 1


def test_min_version_1_3(make_tls, pki):
    b = make_tls({"tls.min_version": "1.3"})
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(b.tls_port, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2))
    assert handshake(b.tls_port, client_ctx(pki)) == "localhost"


def test_client_certificate_is_the_identity(make_tls, pki):
    b = make_tls({"tls.verify_client": "require"})
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-i", "dev-a", "-t", "t", "-m", "hi", cert="client")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: re.search(r'connect_tls_identity client="dev-a" .*identity="device-42"',
                               b.read_log()), what="the certificate CN as the identity")
    assert b.metric("weir_tls_client_certs_total") == 1
    # Required: no certificate, no connection.
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-i", "dev-b", "-t", "t", "-m", "hi")
    assert r.returncode != 0
    assert 'client="dev-b"' not in b.read_log()


def test_optional_client_certificate(make_tls, pki):
    b = make_tls({"tls.verify_client": "optional"})
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-i", "anon", "-t", "t", "-m", "hi")
    assert r.returncode == 0, r.stderr
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-i", "certd", "-t", "t", "-m", "hi", cert="client")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: 'client="certd"' in b.read_log() and "connect_tls_identity" in b.read_log(),
             what="identity of the client with a certificate")
    assert 'connect_tls_identity client="anon"' not in b.read_log()


@pytest.mark.parametrize("cert,why", [("rogue", "self-signed certificate"),
                                      ("expired", "certificate has expired")])
def test_untrusted_and_expired_client_certificates_rejected(make_tls, pki, cert, why):
    b = make_tls({"tls.verify_client": "optional", "http.tls": "true"})
    # MQTT/TLS
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(b.tls_port, client_ctx(pki, cert=cert))
    r = mosq(MOSQ_PUB, b.tls_port, pki, "-t", "t", "-m", "hi", cert=cert)
    assert r.returncode != 0
    wait_for(lambda: why in b.read_log(), what="the reason in the log: " + why)
    assert b.metric('weir_tls_handshakes_total{result="failed"}') >= 2
    # HTTPS: lws must not accept what OpenSSL refused.
    with pytest.raises(requests.exceptions.RequestException):
        requests.get("https://127.0.0.1:%d/healthz" % b.http_port, verify=pki.p("ca.pem"),
                     cert=(pki.p(cert + ".pem"), pki.p(cert + ".key")), timeout=WAIT)
    wait_for(lambda: re.search(r'mod=http event=client_cert_refused .*%s' % why, b.read_log()),
             what="the HTTPS refusal in the log")
    # The valid certificate still works on both.
    assert handshake(b.tls_port, client_ctx(pki, cert="client")) == "localhost"


def test_https_and_wss(make_tls, pki):
    b = make_tls({"http.tls": "true", "tls.verify_client": "optional"})
    url = "https://localhost:%d" % b.http_port
    r = requests.get(url + "/healthz", verify=pki.p("ca.pem"), timeout=WAIT)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/healthz", timeout=WAIT)  # system CAs do not know ours
    r = subprocess.run(["curl", "-sS", "--cacert", pki.p("ca.pem"), url + "/healthz"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    # Plain HTTP on the HTTPS port is not served.
    r = subprocess.run(["curl", "-sS", "-m", "5", "http://127.0.0.1:%d/healthz" % b.http_port],
                       capture_output=True, timeout=30)
    assert b'"status"' not in r.stdout

    # MQTT over WSS (paho, WebSocket transport), with a client certificate:
    # its CN is the identity as on MQTT/TLS.
    got = []
    c = paho.Client(client_id="wss-client", transport="websockets")
    c.ws_set_options(path="/mqtt")
    c.tls_set_context(client_ctx(pki, cert="client"))
    c.on_message = lambda cl, u, m: got.append(m.payload)
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("localhost", b.http_port, keepalive=30)
    c.loop_start()
    try:
        c.subscribe("wss/t", qos=1)
        assert subscribed.wait(WAIT)
        r = mosq(MOSQ_PUB, b.tls_port, pki, "-t", "wss/t", "-m", "from tls to wss", "-q", "1")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: got == [b"from tls to wss"], what="message over WSS")
    finally:
        c.loop_stop()
        c.disconnect()
    wait_for(lambda: re.search(r'connect_tls_identity client="wss-client" .*identity="device-42"',
                               b.read_log()), what="WSS client certificate identity")


def test_sighup_reloads_certificates_without_dropping_connections(make_tls, pki):
    b = make_tls({"http.tls": "true"})
    got = []
    c = paho.Client(client_id="long-lived")
    c.tls_set_context(client_ctx(pki))
    c.on_message = lambda cl, u, m: got.append(m.payload)
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    disconnects = []
    c.on_disconnect = lambda *a: disconnects.append(a)
    c.connect("localhost", b.tls_port, keepalive=30)
    c.loop_start()
    try:
        c.subscribe("reload/t", qos=1)
        assert subscribed.wait(WAIT)
        assert handshake(b.tls_port, client_ctx(pki)) == "localhost"

        for src, dst in (("server2.pem", b.cert), ("server2.key", b.key)):
            with open(pki.p(src), "rb") as f, open(dst + ".new", "wb") as g:
                g.write(f.read())
            os.replace(dst + ".new", dst)
        b.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=tls_reload listener=mqtt" in b.read_log() and
                 "event=tls_reload listener=https" in b.read_log(), what="reload logged")

        # New connections see the new certificate, on both listeners.
        assert handshake(b.tls_port, client_ctx(pki)) == "localhost-v2"
        ctx = client_ctx(pki)
        with socket.create_connection(("127.0.0.1", b.http_port), timeout=WAIT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert dict(x[0] for x in s.getpeercert()["subject"])["commonName"] == \
                    "localhost-v2"
        # The connection made before still works, both ways.
        c.publish("reload/t", b"after reload", qos=1)
        wait_for(lambda: got == [b"after reload"], what="old connection still served")
        assert not disconnects
    finally:
        c.loop_stop()
        c.disconnect()


def test_sighup_with_broken_files_keeps_the_old_certificate(make_tls, pki):
    b = make_tls({"http.tls": "true"})
    # A new certificate with the old key: a mismatched pair.
    with open(pki.p("server2.pem"), "rb") as f, open(b.cert, "wb") as g:
        g.write(f.read())
    b.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the previous certificate" in b.read_log(), what="reload failure")
    assert "event=tls_reload listener" not in b.read_log()
    assert handshake(b.tls_port, client_ctx(pki)) == "localhost"
    r = requests.get("https://localhost:%d/healthz" % b.http_port, verify=pki.p("ca.pem"),
                     timeout=WAIT)
    assert r.status_code == 200


def test_bad_tls_config_refuses_to_start(tmp_path, pki):
    binary = os.environ.get("WEIR_BIN")
    if not binary:
        pytest.skip("WEIR_BIN not set")
    r = subprocess.run([binary, "serve", "--data", str(tmp_path / "d"), "--mqtt",
                        "127.0.0.1:%d" % free_port(), "--http", "", "--set",
                        "tls.cert=" + pki.p("server.pem"), "--set",
                        "tls.key=" + pki.p("client.key"), "--set",
                        "mqtt.tls_listen=127.0.0.1:%d" % free_port()],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert re.search(rb'event=tls error="cannot load \[tls\] key .*mismatch', r.stdout + r.stderr)


def test_cli_tools_over_https_with_client_certificate(make_tls, pki, tmp_path):
    binary = os.environ.get("WEIR_BIN")
    if not binary:
        pytest.skip("WEIR_BIN not set")
    b = make_tls({"http.tls": "true", "tls.verify_client": "require"})
    url = "https://localhost:%d" % b.http_port
    r = requests.post(url + "/api/v1/streams", json={"name": "cli"}, verify=pki.p("ca.pem"),
                      cert=(pki.p("client.pem"), pki.p("client.key")), timeout=WAIT)
    assert r.status_code in (200, 201), r.text
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    env = dict(os.environ, WEIR_URL=url, WEIR_CA_FILE=pki.p("ca.pem"))
    r = subprocess.run([binary, "import", str(csv), "--stream", "cli"], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode != 0  # no client certificate
    env.update(WEIR_CLIENT_CERT=pki.p("client.pem"), WEIR_CLIENT_KEY=pki.p("client.key"))
    r = subprocess.run([binary, "import", str(csv), "--stream", "cli"], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["accepted"] == 2
