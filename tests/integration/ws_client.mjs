// ws_client.mjs -- an MQTT.js client over WebSocket, driven by the
// integration tests through stdin and stdout, one JSON object per line.
//
//   node ws_client.mjs --url=ws://127.0.0.1:PORT/mqtt --id=CLIENT_ID
//                      [--version=4|5] [--clean=0|1] [--keepalive=60]
//                      [--will-topic=T --will-payload=P --will-qos=Q]
//
// Commands (stdin):
//   {"op": "subscribe", "id": 1, "topic": "a/#", "qos": 1}
//   {"op": "publish", "id": 2, "topic": "a/b", "payload": "text", "qos": 1, "retain": false}
//   {"op": "publish", "id": 3, "topic": "a/b", "size": 200000, "qos": 1}   (pattern payload)
//   {"op": "end"}                                    (DISCONNECT, then exit 0)
// Events (stdout):
//   {"event": "connect", "sessionPresent": false, "properties": {...}}
//   {"event": "subscribed", "id": 1, "granted": [{"topic": "a/#", "qos": 1}]}
//   {"event": "published", "id": 2}
//   {"event": "message", "topic": "a/b", "qos": 1, "retain": false, "len": 4,
//    "sha256": "...", "payload": "text"}            (payload only up to 4096 bytes)
//   {"event": "error", "message": "..."}, {"event": "close"}, {"event": "ended"}
//
// The pattern payload of `size` bytes is "0123456789abcdef" repeated and cut,
// so the test can rebuild it.

import crypto from 'node:crypto';
import readline from 'node:readline';
import mqtt from 'mqtt';

const opts = {};
for (const a of process.argv.slice(2)) {
  const eq = a.indexOf('=');
  opts[a.slice(2, eq < 0 ? undefined : eq)] = eq < 0 ? '1' : a.slice(eq + 1);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function pattern(size) {
  return Buffer.from('0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size));
}

const connectOpts = {
  clientId: opts.id || '',
  protocolVersion: Number(opts.version || 4),
  clean: opts.clean !== '0',
  keepalive: Number(opts.keepalive || 60),
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (opts['will-topic']) {
  connectOpts.will = {
    topic: opts['will-topic'],
    payload: Buffer.from(opts['will-payload'] || ''),
    qos: Number(opts['will-qos'] || 0),
    retain: false,
  };
}

const client = mqtt.connect(opts.url, connectOpts);

client.on('connect', (connack) => {
  emit({ event: 'connect', sessionPresent: !!connack.sessionPresent,
         properties: connack.properties || {} });
});
client.on('message', (topic, payload, packet) => {
  const ev = {
    event: 'message', topic, qos: packet.qos, retain: !!packet.retain, len: payload.length,
    sha256: crypto.createHash('sha256').update(payload).digest('hex'),
  };
  if (payload.length <= 4096) ev.payload = payload.toString('utf8');
  if (packet.properties) ev.properties = packet.properties;
  emit(ev);
});
client.on('error', (err) => emit({ event: 'error', message: String(err && err.message) }));
client.on('close', () => emit({ event: 'close' }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.op === 'subscribe') {
    client.subscribe(cmd.topic, { qos: cmd.qos || 0 }, (err, granted) => {
      if (err) emit({ event: 'error', id: cmd.id, message: String(err.message) });
      else emit({ event: 'subscribed', id: cmd.id, granted });
    });
  } else if (cmd.op === 'publish') {
    const payload = cmd.size !== undefined ? pattern(cmd.size) : Buffer.from(cmd.payload || '');
    client.publish(cmd.topic, payload, { qos: cmd.qos || 0, retain: !!cmd.retain }, (err) => {
      if (err) emit({ event: 'error', id: cmd.id, message: String(err.message) });
      else emit({ event: 'published', id: cmd.id });
    });
  } else if (cmd.op === 'end') {
    client.end(false, {}, () => {
      emit({ event: 'ended' });
      process.exit(0);
    });
  } else {
    emit({ event: 'error', message: 'unknown op ' + cmd.op });
  }
});
