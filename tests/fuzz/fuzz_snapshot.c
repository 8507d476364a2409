/* fuzz_snapshot.c -- broker snapshot files as they come off a disk that may
 * have lost or flipped bytes: restore must reject what fails its checksum
 * and never crash, leak or loop. */
#include "auth/auth.h"
#include "mqtt/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mqtt_broker_config cfg = {
        .max_packet_size = 4096, .max_connections = 8, .receive_maximum = 4,
        .max_queued_messages = 8, .max_queued_bytes = 1 << 16, .max_outbuf = 8192,
        .max_keepalive = 60, .max_session_expiry = 3600, .topic_alias_maximum = 4,
        .max_subscriptions = 8, .retain_available = true,
    };
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&cfg, a);
    mqtt_broker_restore(b, data, size);
    mqtt_broker_tick(b);
    mqtt_broker_free(b);
    auth_free(a);
    return 0;
}
