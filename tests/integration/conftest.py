"""Fixtures for weir's black-box integration tests.

Every test gets its own broker process, started on 127.0.0.1 with free ports
and a fresh data directory, and stopped (SIGTERM, then a check of the exit
status and of the log for sanitizer reports) when the test ends.

Target: WEIR_TEST_TARGET=weir (default) runs `$WEIR_BIN serve ...`;
WEIR_TEST_TARGET=mosquitto runs Debian's /usr/sbin/mosquitto with a generated
configuration, so that the suite itself can be validated against a mature
broker. Broker options are written as weir `--set` keys through the `broker`
marker:

    @pytest.mark.broker(config={"mqtt.max_packet_size": "1024"})

and translated to mosquitto.conf where Mosquitto has an equivalent; a test
whose options Mosquitto cannot express is skipped for it, with the reason.

Nothing here sleeps to synchronise: `wait_for` polls a condition against a
deadline, and clients hand received messages over through queues read with
timeouts.
"""

import http.client
import json
import os
import pwd
import queue
import signal
import socket
import subprocess
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqttraw

TARGET = os.environ.get("WEIR_TEST_TARGET", "weir")
if TARGET not in ("weir", "mosquitto"):
    raise pytest.UsageError("WEIR_TEST_TARGET must be 'weir' or 'mosquitto', not %r" % TARGET)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(os.path.dirname(HERE))
MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")

# Seconds. Generous, because the weir binary under test is an ASan build;
# a passing test never waits for them to run out.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
WAIT = 5.0

# The first admin's password for every weir started here (see docs/security.md:
# WEIR_ADMIN_PASSWORD is read on first start only).
ADMIN_PASSWORD = "itest-admin-pw-0123"

# The loopback demo/test profile: clients without credentials from 127.0.0.1
# get every right. Tests of authentication itself turn it off with
# @pytest.mark.broker(config={"auth.anonymous": "false"}).
WEIR_DEFAULTS = {"auth.anonymous": "true"}

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "broker(config={...}): weir --set options for this test's broker")


def weir_only(reason):
    """Marks a test that only makes sense against weir."""
    return pytest.mark.skipif(TARGET != "weir", reason="weir-specific: " + reason)


# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------


def wait_for(cond, timeout=WAIT, what="condition", interval=0.01):
    """Polls `cond()` until it returns a true value, which is returned.
    Fails the test with `what` when the deadline passes first."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def let_time_pass(seconds):
    """Waits for wall time to pass when the behaviour under test is defined
    by elapsed time (message expiry, session expiry). Never used to wait for
    the broker to do something: that is what wait_for and the queues are for."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# The broker under test
# ---------------------------------------------------------------------------

# Set once a broker did not get ready in time (see Broker._wait_ready).
_never_ready = False

# weir --set key -> (mosquitto.conf directive, whether it belongs to a listener)
MOSQUITTO_EQUIVALENTS = {
    "mqtt.max_packet_size": ("max_packet_size", False),
    "mqtt.receive_maximum": ("max_inflight_messages", False),
    "mqtt.max_keepalive": ("max_keepalive", False),
    "mqtt.max_queued_messages": ("max_queued_messages", False),
    "mqtt.retain_available": ("retain_available", False),
    "mqtt.topic_alias_maximum": ("max_topic_alias", True),
}


class Broker:
    """One broker process (weir or mosquitto) with its ports and data dir."""

    def __init__(self, workdir, config=None, target=TARGET):
        self.target = target
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.config = dict(config or {})
        self.proc = None
        self.runs = 0
        self.log_path = None
        self.logs = []
        self.port = None
        self.http_port = None
        if target == "mosquitto":
            for key in self.config:
                if key == "auth.anonymous" and self.config[key] == "true":
                    continue  # Mosquitto runs with allow_anonymous true
                if key != "mqtt.deny" and key not in MOSQUITTO_EQUIVALENTS:
                    pytest.skip("mosquitto has no equivalent of weir's %s" % key)

    # -- what tests need to know -----------------------------------------

    @property
    def is_weir(self):
        return self.target == "weir"

    @property
    def strict_disconnect(self):
        """Whether a 5.0 DISCONNECT with a reason code must precede the close
        of a connection for a protocol error found after CONNACK, and on a
        session takeover. The spec says SHOULD (4.13) and "sends" (3.1.4);
        weir always sends it, Mosquitto 2.0.11 often closes silently. When
        not strict, a DISCONNECT is optional but its code is still checked."""
        return self.is_weir

    @property
    def ws_url(self):
        return "ws://127.0.0.1:%d/mqtt" % self.http_port

    # -- life cycle --------------------------------------------------------

    def start(self, new_ports=True):
        """Starts the broker and waits until it is ready. Retries with other
        ports when the chosen ones were taken in the meantime."""
        for attempt in range(3):
            if new_ports or self.port is None:
                self.port, self.http_port = free_port(), free_port()
                while self.http_port == self.port:
                    self.http_port = free_port()
            self._spawn()
            if self._wait_ready():
                return self
            status = self.proc.wait()
            self.proc = None
            log = self.read_log()
            if "address already in use" in log.lower() and attempt < 2:
                new_ports = True
                continue
            pytest.fail("%s did not start (exit status %s); log %s:\n%s"
                        % (self.target, status, self.log_path, log[-4000:]))
        raise AssertionError("unreachable")

    def _spawn(self):
        self.runs += 1
        self.log_path = os.path.join(self.workdir, "broker-%d.log" % self.runs)
        self.logs.append(self.log_path)
        if self.is_weir:
            args = self._weir_args()
            env = dict(os.environ)
            env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            env.setdefault("WEIR_ADMIN_PASSWORD", ADMIN_PASSWORD)
        else:
            args = [MOSQUITTO, "-c", self._mosquitto_conf()]
            env = dict(os.environ)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir, env=env)

    def _weir_args(self):
        binary = os.environ.get("WEIR_BIN") or os.path.join(SRC, "build-test", "weir")
        if not os.access(binary, os.X_OK):
            pytest.fail("weir binary %r not found: set WEIR_BIN (CTest does), or "
                        "WEIR_TEST_TARGET=mosquitto to validate the suite" % binary)
        args = [binary, "serve", "--data", self.data_dir,
                "--mqtt", "127.0.0.1:%d" % self.port,
                "--http", "127.0.0.1:%d" % self.http_port,
                "--log-level", "debug"]
        for k, v in dict(WEIR_DEFAULTS, **self.config).items():
            args += ["--set", "%s=%s" % (k, v)]
        return args

    def _mosquitto_conf(self):
        general, per_listener = [], []
        for key, value in self.config.items():
            if key == "auth.anonymous":
                continue
            if key == "mqtt.deny":
                general.append("acl_file %s" % self._mosquitto_acl(value))
                continue
            directive, listener_level = MOSQUITTO_EQUIVALENTS[key]
            (per_listener if listener_level else general).append("%s %s" % (directive, value))
        # As root, Mosquitto switches to this user (default "mosquitto", who
        # could not write the data dir); as anyone else it stays who it is.
        user = pwd.getpwuid(os.geteuid()).pw_name
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            "user %s" % user,
            "log_dest stderr",
            "log_type all",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "persistence true",
            "persistence_location %s/" % self.data_dir,
            "autosave_interval 0",
            "set_tcp_nodelay true",
        ] + general + [
            "listener %d 127.0.0.1" % self.port,
            "protocol mqtt",
        ] + per_listener + [
            "listener %d 127.0.0.1" % self.http_port,
            "protocol websockets",
        ] + per_listener
        path = os.path.join(self.workdir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _mosquitto_acl(self, deny):
        # Mosquitto checks deny entries before grants, so this is weir's
        # mqtt.deny: nobody may publish or subscribe to these filters.
        path = os.path.join(self.workdir, "mosquitto.acl")
        with open(path, "w") as f:
            for filt in deny.split(","):
                f.write("topic deny %s\n" % filt.strip())
            f.write("topic readwrite #\n")
        return path

    def _wait_ready(self):
        """True once an MQTT CONNECT gets a CONNACK (and, for weir, /healthz
        answers 200; for Mosquitto, the WebSocket port accepts); False if the
        process exited first. After one broker of this run never became
        ready, later ones get a short deadline, so that a broker that does
        not listen yet fails the suite in seconds rather than an hour."""
        global _never_ready
        timeout = 3.0 if _never_ready else START_TIMEOUT
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._probe():
                return True
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        self.proc = None  # reported here; teardown has nothing left to check
        _never_ready = True
        pytest.fail("%s was not ready within %.0fs; log %s:\n%s"
                    % (self.target, timeout, self.log_path, self.read_log()[-4000:]))

    def _probe(self):
        try:
            c = mqttraw.Conn(self.port, timeout=1.0)
        except OSError:
            return False
        try:
            # Keep alive 5: under any max_keepalive a test sets (Mosquitto refuses
            # 3.1.1 clients above it).
            creds = {}
            if self.is_weir and dict(WEIR_DEFAULTS, **self.config).get("auth.anonymous") != "true":
                creds = {"username": "admin", "password": ADMIN_PASSWORD.encode()}
            c.send(mqttraw.connect("itest-ready", v=mqttraw.V311, keepalive=5, **creds))
            p = c.read(2.0)
            if p.raw != mqttraw.connack():
                return False
            c.send(mqttraw.disconnect())
        except (OSError, mqttraw.Closed, mqttraw.Timeout, ValueError):
            return False
        finally:
            c.close()
        if self.is_weir:
            return http_get(self.http_port, "/healthz")[0] == 200
        try:
            socket.create_connection(("127.0.0.1", self.http_port), timeout=1.0).close()
        except OSError:
            return False
        return True

    def stop(self):
        """SIGTERM, then checks that the broker exited 0 within the deadline
        and that its log holds no sanitizer report. Raises AssertionError
        otherwise (after making sure the process is gone)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("%s did not exit within %.0fs of SIGTERM; log %s"
                                     % (self.target, STOP_TIMEOUT, self.log_path))
        self.check_log()
        assert proc.returncode == 0, ("%s exited with status %d after SIGTERM; log %s:\n%s"
                                      % (self.target, proc.returncode, self.log_path,
                                         self.read_log()[-4000:]))

    def kill(self):
        """SIGKILL, for cleanup after a failure."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        """Clean stop (checked as in stop()) and start again on the same data
        directory and ports, as an operator would."""
        self.stop()
        return self.start(new_ports=False)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self, path=None):
        try:
            with open(path or self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def check_log(self):
        for path in self.logs:
            bad = [line for line in self.read_log(path).splitlines()
                   if any(m in line for m in SANITIZER_MARKERS)]
            assert not bad, "sanitizer report in %s:\n%s" % (path, "\n".join(bad[:20]))


def http_get(port, path, timeout=2.0):
    """(status, body) of a GET on 127.0.0.1:port, or (None, error text)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of every broker log of a failed test to its report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_brokers", []):
            for path in b.logs:
                rep.sections.append(("broker log %s (tail)" % path, b.read_log(path)[-6000:]))


@pytest.fixture
def make_broker(request, tmp_path):
    """Factory: make_broker(config=None) starts a broker. Every broker is
    stopped, and its exit checked, when the test ends."""
    brokers = []
    request.node._brokers = brokers

    def make(config=None, start=True):
        workdir = tmp_path / ("broker%d" % len(brokers))
        workdir.mkdir()
        b = Broker(str(workdir), config)
        brokers.append(b)
        if start:
            b.start()
        return b

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


@pytest.fixture
def broker(request, make_broker):
    """A running broker configured by the test's `broker` marker, if any."""
    m = request.node.get_closest_marker("broker")
    config = m.kwargs.get("config") if m else None
    return make_broker(config)


# ---------------------------------------------------------------------------
# Raw connections
# ---------------------------------------------------------------------------


@pytest.fixture
def raw(broker):
    """Factory: raw(v=4|5) opens a mqttraw.Conn to the broker; closed at
    teardown."""
    conns = []

    def make(v=mqttraw.V311, timeout=WAIT):
        c = mqttraw.Conn(broker.port, v=v, timeout=timeout)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()


class Witness:
    """A client connected before a test misbehaves; `check()` proves the
    broker still serves it (a QoS 1 round trip through the broker)."""

    def __init__(self, port, v=mqttraw.V311):
        self.n = 0
        self.topic = "witness/%d" % os.getpid()
        self.conn = mqttraw.Conn(port, v=v)
        self.conn.connect("witness-%d" % os.getpid())
        assert self.conn.subscribe(1, [(self.topic, 1)]) == [1]

    def check(self):
        self.n += 1
        payload = b"alive %d" % self.n
        mid = 100 + self.n
        self.conn.send(mqttraw.publish(self.topic, payload, qos=1, mid=mid, v=self.conn.v))
        got_ack = got_msg = False
        while not (got_ack and got_msg):
            p = self.conn.read(WAIT)
            if p.type == mqttraw.PUBACK:
                assert p.mid == mid
                got_ack = True
            elif p.type == mqttraw.PUBLISH:
                assert (p.topic, p.payload) == (self.topic, payload)
                self.conn.send(mqttraw.puback(p.mid, v=self.conn.v))
                got_msg = True
            else:
                raise AssertionError("witness got unexpected %r" % p)


@pytest.fixture
def witness(broker):
    w = Witness(broker.port)
    yield w
    w.conn.close()


def expect_protocol_error(broker, conn, codes, timeout=WAIT):
    """The broker must close `conn` because of what it just sent. For 5.0
    the close may (strict target: must) be preceded by a DISCONNECT whose
    reason code is one of `codes`; nothing else may arrive. For 3.1.1 the
    connection is simply closed."""
    if isinstance(codes, int):
        codes = (codes,)
    try:
        got = conn.wait_closed(timeout)
    except mqttraw.Timeout:
        pytest.fail("broker did not close the connection within %.1fs" % timeout)
    if conn.v == mqttraw.V5:
        others = [p for p in got if p.type != mqttraw.DISCONNECT]
        assert not others, "unexpected packets before the close: %r" % others
        discs = [p for p in got if p.type == mqttraw.DISCONNECT]
        if broker.strict_disconnect:
            assert len(discs) == 1, "expected one DISCONNECT before the close, got %r" % got
        for d in discs:
            assert d.rc in codes, ("DISCONNECT reason 0x%02x, expected one of %s"
                                   % (d.rc, ["0x%02x" % c for c in codes]))
    else:
        assert got == [], "3.1.1: unexpected packets before the close: %r" % got
    return got


# ---------------------------------------------------------------------------
# Child processes (mosquitto_pub/sub, node)
# ---------------------------------------------------------------------------


class Proc:
    """A child process whose stdout lines are read by a thread into a queue,
    so that a test can wait for a line with a deadline."""

    def __init__(self, args, stdin=False, cwd=None):
        self.args = args
        if os.path.basename(args[0]).startswith("mosquitto_"):
            # Its stdout is block-buffered on a pipe; the tests read it live.
            args = ["stdbuf", "-oL"] + list(args)
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        self._t_out = threading.Thread(target=self._pump, args=(self.p.stdout, self.lines),
                                       daemon=True)
        self._t_err = threading.Thread(target=self._pump_err, daemon=True)
        self._t_out.start()
        self._t_err.start()

    def _pump(self, stream, q):
        try:
            for line in iter(stream.readline, b""):
                q.put(line.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):  # closed under us at teardown
            pass
        q.put(None)

    def _pump_err(self):
        try:
            for line in iter(self.p.stderr.readline, b""):
                self.err.append(line.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def describe(self):
        return "%s\nstdout so far:\n%s\nstderr:\n%s" % (
            " ".join(self.args), "\n".join(self.seen[-30:]), "\n".join(self.err[-30:]))

    def next_line(self, timeout=WAIT):
        """The next stdout line; None at EOF. Fails the test on timeout."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("no output within %.1fs from %s" % (timeout, self.describe()))
        if line is None:
            self.lines.put(None)  # stay at EOF
        else:
            self.seen.append(line)
        return line

    def wait_line(self, pred, timeout=WAIT, what="a line"):
        """Skips stdout lines until pred(line) holds; returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                self.p.wait()
                pytest.fail("EOF (exit %s) before %s from %s"
                            % (self.p.returncode, what, self.describe()))
            if pred(line):
                return line

    def send(self, text):
        self.p.stdin.write(text.encode("utf-8"))
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=WAIT):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("still running after %.1fs: %s" % (timeout, self.describe()))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.kill()
        # The readers end at EOF now that the process is gone; close the
        # pipes only after them, never under a blocked read.
        self._t_out.join(WAIT)
        self._t_err.join(WAIT)
        streams = [self.p.stdin]
        if not (self._t_out.is_alive() or self._t_err.is_alive()):
            streams += [self.p.stdout, self.p.stderr]
        for s in streams:
            if s:
                try:
                    s.close()
                except (OSError, ValueError):
                    pass


@pytest.fixture
def procs():
    """Factory: procs(args, stdin=False) starts a Proc; all are stopped at
    teardown."""
    started = []

    def make(args, stdin=False, cwd=None):
        p = Proc(args, stdin=stdin, cwd=cwd)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def run(args, timeout=WAIT, input=None):
    """Runs a command to completion; fails the test on timeout or non-zero
    exit. Returns its stdout."""
    try:
        r = subprocess.run(args, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("timed out after %.1fs: %s" % (timeout, " ".join(args)))
    assert r.returncode == 0, "%s exited %d\nstdout: %s\nstderr: %s" % (
        " ".join(args), r.returncode, r.stdout.decode(errors="replace"),
        r.stderr.decode(errors="replace"))
    return r.stdout


class MosquittoSub:
    """mosquitto_sub printing one JSON object per message (-F %j), started
    with -d so that the test can wait for its SUBACK before publishing.
    Messages printed while waiting for a debug line are kept for message()."""

    def __init__(self, procs, broker, topics, qos=0, version="mqttv311", extra=()):
        if isinstance(topics, str):
            topics = [topics]
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version,
                "-q", str(qos), "-d", "-F", "%j"] + list(extra)
        for t in topics:
            args += ["-t", t]
        self.proc = procs(args)
        self.backlog = []

    def _line(self, pred, timeout, what):
        """The next line satisfying pred; message lines passed on the way
        go to the backlog."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.wait_line(lambda l: True, max(0.0, deadline - time.monotonic()), what)
            if pred(line):
                return line
            if line.startswith("{"):
                self.backlog.append(json.loads(line))

    def wait_subscribed(self, timeout=WAIT):
        self._line(lambda l: "received SUBACK" in l, timeout, "SUBACK")
        return self

    def message(self, timeout=WAIT):
        """The next message as a dict (topic, qos, retain, payload, ...)."""
        if self.backlog:
            return self.backlog.pop(0)
        return json.loads(self._line(lambda l: l.startswith("{"), timeout, "a message"))

    def messages(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        return [self.message(max(0.0, deadline - time.monotonic())) for _ in range(n)]


def mosquitto_pub(broker, topic, message=None, qos=0, retain=False, version="mqttv311",
                  extra=()):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version,
            "-q", str(qos), "-t", topic]
    if message is None:
        args.append("-n")
    else:
        args += ["-m", message]
    if retain:
        args.append("-r")
    run(args + list(extra))


# ---------------------------------------------------------------------------
# paho-mqtt 1.6 clients
# ---------------------------------------------------------------------------


class Msg:
    """A message a paho client received, with the time it arrived."""

    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.properties = getattr(m, "properties", None)
        self.t = time.monotonic()

    def prop(self, name, default=None):
        if self.properties is None:
            return default
        return getattr(self.properties, name, default)

    def __repr__(self):
        return "<Msg %s %r q%d r%d>" % (self.topic, self.payload, self.qos, self.retain)


def make_props(ptype, **kw):
    """paho Properties of packet type `ptype` from keyword arguments named
    as paho names them (SessionExpiryInterval=..., UserProperty=[...])."""
    p = Properties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho-mqtt client with its network thread running and helpers that
    wait for acknowledgements with deadlines. `v` is 4 (3.1.1) or 5."""

    def __init__(self, broker, client_id="", v=5, clean=True, keepalive=60,
                 session_expiry=None, will=None, connect_props=None, port=None):
        self.broker = broker
        self.v = v
        self.client_id = client_id
        self.clean = clean
        self.keepalive = keepalive
        self.port = port or broker.port
        self.connect_props = dict(connect_props or {})
        if session_expiry is not None:
            self.connect_props["SessionExpiryInterval"] = session_expiry
        self.will = will
        self.messages = queue.Queue()
        self.cond = threading.Condition()
        self.connack = None
        self.subacks = {}
        self.unsubacks = {}
        self.disconnected = None
        self.c = paho.Client(client_id=client_id,
                             clean_session=None if v == 5 else clean,
                             protocol=paho.MQTTv5 if v == 5 else paho.MQTTv311,
                             reconnect_on_failure=False)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.running = False

    # -- callbacks (network thread) ----------------------------------------

    def _on_connect(self, c, ud, flags, rc, properties=None):
        with self.cond:
            self.connack = (flags, rc, properties)
            self.cond.notify_all()

    def _on_subscribe(self, c, ud, mid, codes, properties=None):
        with self.cond:
            self.subacks[mid] = codes
            self.cond.notify_all()

    def _on_unsubscribe(self, c, ud, mid, properties=None, codes=None):
        with self.cond:
            self.unsubacks[mid] = codes
            self.cond.notify_all()

    def _on_message(self, c, ud, m):
        self.messages.put(Msg(m))

    def _on_disconnect(self, c, ud, rc, properties=None):
        with self.cond:
            self.disconnected = (rc, properties)
            self.cond.notify_all()

    def _wait(self, cond, timeout, what):
        with self.cond:
            if not self.cond.wait_for(cond, timeout):
                pytest.fail("%s: timed out after %.1fs waiting for %s"
                            % (self.client_id or "client", timeout, what))

    # -- actions -------------------------------------------------------------

    def connect(self, timeout=WAIT, expect_rc=0):
        """Connects and returns (flags, reason code, CONNACK properties)."""
        if self.will:
            w = dict(self.will)
            wp = w.pop("properties", None)
            self.c.will_set(w["topic"], w.get("payload"), w.get("qos", 0), w.get("retain", False),
                            make_props(PacketTypes.WILLMESSAGE, **wp) if wp else None)
        kw = {}
        if self.v == 5:
            kw["clean_start"] = self.clean
            if self.connect_props:
                kw["properties"] = make_props(PacketTypes.CONNECT, **self.connect_props)
        self.connack = None
        self.disconnected = None
        self.c.connect("127.0.0.1", self.port, self.keepalive, **kw)
        self.c.loop_start()
        self.running = True
        self._wait(lambda: self.connack is not None, timeout, "CONNACK")
        flags, rc, props = self.connack
        assert int(getattr(rc, "value", rc)) == expect_rc, "CONNACK %s" % rc
        return self.connack

    def subscribe(self, topic, qos=0, timeout=WAIT, sub_id=None, user_props=None,
                  **options):
        """Subscribes (options: noLocal, retainAsPublished, retainHandling
        for 5.0) and returns the SUBACK codes as ints."""
        props = None
        if sub_id is not None or user_props:
            kw = {}
            if sub_id is not None:
                kw["SubscriptionIdentifier"] = sub_id
            if user_props:
                kw["UserProperty"] = user_props
            props = make_props(PacketTypes.SUBSCRIBE, **kw)
        if self.v == 5:
            opts = paho.SubscribeOptions(qos=qos, **options)
            rc, mid = self.c.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == paho.MQTT_ERR_SUCCESS, "subscribe: %s" % paho.error_string(rc)
        self._wait(lambda: mid in self.subacks, timeout, "SUBACK")
        return [int(getattr(c, "value", c)) for c in self.subacks[mid]]

    def unsubscribe(self, topic, timeout=WAIT):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == paho.MQTT_ERR_SUCCESS
        self._wait(lambda: mid in self.unsubacks, timeout, "UNSUBACK")
        return self.unsubacks[mid]

    def publish(self, topic, payload=b"", qos=0, retain=False, timeout=WAIT, **props):
        """Publishes and waits until the QoS flow completes. Keyword
        arguments are PUBLISH properties by their paho names."""
        p = make_props(PacketTypes.PUBLISH, **props) if props else None
        info = self.c.publish(topic, payload, qos, retain, properties=p)
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish: %s" % paho.error_string(info.rc)
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish to %s not completed within %.1fs" % (topic, timeout)
        return info

    def get(self, timeout=WAIT):
        """The next received message; fails the test on timeout."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("%s: no message within %.1fs" % (self.client_id or "client", timeout))

    def get_n(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        return [self.get(max(0.0, deadline - time.monotonic())) for _ in range(n)]

    def until(self, pred, timeout=WAIT):
        """Every message up to and including the first one for which
        pred(msg) holds."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            m = self.get(max(0.0, deadline - time.monotonic()))
            out.append(m)
            if pred(m):
                return out

    def pending(self):
        """Messages received so far and not yet taken."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout=WAIT):
        """Waits until the broker ends the connection; returns (reason code
        as int, properties)."""
        self._wait(lambda: self.disconnected is not None, timeout, "disconnection")
        rc, props = self.disconnected
        return int(getattr(rc, "value", rc)), props

    def disconnect(self, timeout=WAIT, **props):
        p = make_props(PacketTypes.DISCONNECT, **props) if props else None
        self.c.disconnect(properties=p) if self.v == 5 else self.c.disconnect()
        self._wait(lambda: self.disconnected is not None, timeout, "clean disconnection")
        self.c.loop_stop()
        self.running = False

    def close(self):
        if self.running:
            try:
                self.c.disconnect()
            except Exception:
                pass
            self.c.loop_stop()
            self.running = False


@pytest.fixture
def client(broker):
    """Factory: client(client_id="", v=5, ..., connect=True) makes a paho
    client (connected unless connect=False); all are closed at teardown."""
    made = []

    def make(client_id="", v=5, connect=True, **kw):
        c = Client(broker, client_id, v=v, **kw)
        made.append(c)
        if connect:
            c.connect()
        return c

    yield make
    for c in made:
        c.close()
