/* demo.h -- the demo profile behind `make run` (`weir serve --demo`).
 *
 * It makes a fresh node show something at once: it defines the `climate`
 * stream (source mqtt:factory/+/climate, key device, event time ts) and
 * starts `weir replay` of the shipped UCI Appliances Energy file as a child
 * process: nine room devices (room1..room9) publishing temperature and
 * humidity to factory/{device}/climate on the node's own MQTT listener, at
 * [demo] speedup times the recorded pace, looping, stamped with the current
 * time so that charts of the last minutes move. With the rule runtime in
 * the build (`rs`, a struct rules *, not NULL) it also installs the
 * rule climate_avg: per-room averages of temperature and humidity over 5 s
 * windows advancing by 1 s, emitted to the derived stream climate_avg (an
 * existing rule of that name is left as it is).
 *
 * Safety: the demo runs only when both listeners are on loopback addresses
 * (it publishes made-up readings into the node); otherwise start-up fails
 * with a clear log line. The child is the same executable (/proc/self/exe),
 * is told to exit when its parent dies (--exit-with-parent), and is stopped
 * with SIGTERM by demo_stop when the node stops.
 */
#ifndef WEIR_DEMO_DEMO_H
#define WEIR_DEMO_DEMO_H

#include "base/config.h"
#include "ingest/ingest.h"

#include <uv.h>

typedef struct demo demo;

/* Defines the stream (and the rule) and spawns the replay towards mqtt_port. A missing
 * demo file is logged and the node runs without the replay. Returns
 * WEIR_OK, WEIR_EINVAL (not loopback) or WEIR_ENOMEM; *out may be NULL. */
int demo_start(uv_loop_t *loop, ingest *in, void *rs, const weir_config *cfg, int mqtt_port,
               demo **out);
/* Stops the child (SIGTERM); the handle closes once it has exited, so the
 * loop must run afterwards. */
void demo_stop(demo *d);
/* After the loop has run the handle's close. NULL is a no-op. */
void demo_free(demo *d);

#endif
