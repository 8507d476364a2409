// Node-RED settings for the rules benchmark (bench/rules/run.sh): no
// editor, no telemetry, warnings only. NR_USERDIR and NR_PORT come from
// run.sh; the flow's broker port from MQTT_PORT (flows.json uses ${MQTT_PORT}).
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
};
