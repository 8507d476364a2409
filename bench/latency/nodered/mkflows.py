#!/usr/bin/env python3
"""Writes flows.json, the Node-RED peer loop of the latency benchmark (kept
as Python so that the function nodes' JavaScript stays readable here; run
it after editing and commit both).

  mqtt in weir-probe/# (QoS 1) -> X: T2 -> X: INSERT (PostgreSQL, autocommit)
  -> X: T3            PostgreSQL AFTER INSERT trigger pg_notify('weir_probe')
  Y: LISTEN weir_probe (T4 on the notification) -> mqtt out peer-loop/<device>
  (QoS 1) -> the probe (T5)

Timestamps are CLOCK_REALTIME ns as BigInt (clock.js); 64-bit integers never
go through JSON.parse (a Number rounds epoch nanoseconds to 256 ns), so the
fields are taken from the JSON text with regular expressions.
"""
import json
import os

T2 = r"""
// T2: the reading arrived from Mosquitto.
const t2 = global.get('nowNs')();
const m = /"device":"([^"]*)","seq":(\d+),"t0":\d+,"t1":(\d+)/.exec(msg.payload);
if (!m) return null;
msg.t2 = String(t2);
msg.device = m[1]; msg.seq = m[2]; msg.t1 = m[3];
return msg;
"""

INSERT_START = r"""
// A pool of 10 connections, what node-red-contrib-postgresql uses by default.
const pg = global.get('pg');
const pool = new pg.Pool(Object.assign({ max: 10 }, global.get('pgConfig')));
pool.on('error', (e) => node.error(e));
context.set('pool', pool);
"""
INSERT = r"""
// INSERT with autocommit: the row is committed (synchronous_commit = on,
// PostgreSQL's default) when the query returns.
context.get('pool').query(
    'INSERT INTO readings (device, seq, t1, t2, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id',
    [msg.device, msg.seq, msg.t1, msg.t2, msg.payload])
  .then((r) => { msg.id = String(r.rows[0].id); node.send(msg); node.done(); })
  .catch((e) => node.error(e, msg));
return null;
"""
INSERT_STOP = "const p = context.get('pool'); if (p) p.end();\n"

T3 = r"""
// T3: the INSERT returned. Y may already hold the notification (PostgreSQL
// sends it at commit, before X hears back): hand T3 over either way.
const t3 = global.get('nowNs')();
const waiting = global.get('t3waiters');
const cb = waiting.get(msg.id);
if (cb) { waiting.delete(msg.id); cb(t3); }
else global.get('t3s').set(msg.id, t3);
return null;
"""

LISTEN_START = r"""
// Y: a dedicated connection LISTENing on the trigger's channel.
global.set('t3s', new Map());
global.set('t3waiters', new Map());
const pg = global.get('pg');
const nowNs = global.get('nowNs');
const c = new pg.Client(global.get('pgConfig'));
await c.connect();
const num = (s, k) => new RegExp('"' + k + '" ?: ?"?([^,"}]+)').exec(s)[1].trim();
c.on('notification', (n) => {
  const t4 = nowNs(); // T4: the notification arrived
  const s = n.payload, id = num(s, 'id');
  const emit = (t3) => node.send({
    topic: 'peer-loop/' + num(s, 'device'),
    payload: '{"seq":' + num(s, 'seq') + ',"t1":' + num(s, 't1') + ',"t2":' + num(s, 't2') +
             ',"t3":' + t3 + ',"t4":' + t4 + '}' });
  const t3s = global.get('t3s'), t3 = t3s.get(id);
  if (t3 !== undefined) { t3s.delete(id); emit(t3); }
  else global.get('t3waiters').set(id, emit);
});
await c.query('LISTEN weir_probe');
context.set('client', c);
node.warn('peer: ready');
"""
LISTEN_STOP = "const c = context.get('client'); if (c) c.end();\n"


def fn(id_, name, func, wires, x, y, init="", fin="", outputs=1):
    return {"id": id_, "type": "function", "z": "tab", "name": name, "func": func.strip() + "\n",
            "outputs": outputs, "timeout": 0, "noerr": 0, "initialize": init.lstrip(),
            "finalize": fin, "libs": [], "x": x, "y": y, "wires": wires}


flows = [
    {"id": "tab", "type": "tab", "label": "latency peer loop", "disabled": False, "info": ""},
    {"id": "broker", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1",
     "port": "${MQTT_PORT}", "clientid": "", "autoConnect": True, "usetls": False,
     "protocolVersion": "4", "keepalive": "60", "cleansession": True, "autoUnsubscribe": True,
     "birthTopic": "", "closeTopic": "", "willTopic": "", "sessionExpiry": ""},
    {"id": "in", "type": "mqtt in", "z": "tab", "name": "devices", "topic": "weir-probe/#",
     "qos": "1", "datatype": "utf8", "broker": "broker", "nl": False, "rap": True, "rh": 0,
     "inputs": 0, "x": 110, "y": 80, "wires": [["t2"]]},
    fn("t2", "X: T2", T2, [["insert"]], 260, 80),
    fn("insert", "X: INSERT (PostgreSQL)", INSERT, [["t3"]], 450, 80, INSERT_START, INSERT_STOP),
    fn("t3", "X: T3", T3, [], 640, 80, outputs=0),
    fn("listen", "Y: LISTEN weir_probe, T4", "return null;", [["out"]], 190, 160, LISTEN_START,
       LISTEN_STOP),
    {"id": "out", "type": "mqtt out", "z": "tab", "name": "to the probe", "topic": "", "qos": "1",
     "retain": "false", "respTopic": "", "contentType": "", "userProps": "", "correl": "",
     "expiry": "", "broker": "broker", "x": 420, "y": 160, "wires": []},
]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "flows.json"), "w") as f:
    json.dump(flows, f, indent=1)
    f.write("\n")
