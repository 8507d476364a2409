/* node.h -- one running weir: the composition root that wires the modules.
 *
 * node_run builds every part from the configuration (catalog, broker, MQTT
 * listener, HTTP server), runs the event loop until SIGINT/SIGTERM, then
 * shuts down in order: stop accepting, tell clients, flush snapshots, close
 * handles, free. This is the only file that knows every module.
 */
#ifndef WEIR_NODE_H
#define WEIR_NODE_H

#include "base/config.h"

/* Runs a node until it is told to stop. Returns the process exit status:
 * 0 after a clean shutdown, 1 when start-up failed (the reason is logged). */
int node_run(const weir_config *cfg);

#endif
