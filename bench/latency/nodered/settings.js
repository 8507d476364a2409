// Node-RED settings for the latency benchmark's peer loop
// (bench/latency/run.sh): no editor, no telemetry, warnings only. Node-RED
// itself is bench/rules/nodered's install; this directory holds the flow,
// the PostgreSQL client (pg, pinned by package-lock.json) and the clock.
// The function nodes get pg and the clock through functionGlobalContext;
// NR_USERDIR, NR_PORT, MQTT_PORT and PG_* come from run.sh (flows.json uses
// ${MQTT_PORT}).
const clock = require("./clock.js");

// Node.js sockets start with Nagle's algorithm on, and Node-RED's MQTT
// client (MQTT.js) leaves it on: a QoS 1 PUBLISH that follows the PUBACK of
// an incoming reading on the same connection then waits for the broker's
// delayed ACK (~40 ms on Linux). Mosquitto and weir run with TCP_NODELAY,
// so the peer gets it too (NR_NODELAY=0 keeps Node's default, to see it).
if (process.env.NR_NODELAY !== "0") {
  const net = require("net");
  const createConnection = net.createConnection;
  net.createConnection = function (...args) {
    const s = createConnection.apply(this, args);
    s.setNoDelay(true);
    return s;
  };
}
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: parseInt(process.env.NR_PORT || "1880", 10),
  userDir: process.env.NR_USERDIR,
  flowFile: __dirname + "/flows.json",
  httpAdminRoot: false,
  httpNodeRoot: false,
  credentialSecret: false,
  telemetry: { enabled: false },
  diagnostics: { enabled: false },
  logging: { console: { level: "warn", metrics: false, audit: false } },
  contextStorage: { default: { module: "memory" } },
  functionGlobalContext: {
    pg: require("pg"),
    nowNs: clock.nowNs,
    pgConfig: {
      host: process.env.PG_HOST, port: parseInt(process.env.PG_PORT || "5432", 10),
      user: "postgres", database: "postgres",
    },
  },
};
