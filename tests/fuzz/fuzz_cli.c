/* fuzz_cli.c -- libFuzzer target for what the CLI tools read from outside:
 * the MQTT framing and PUBLISH parsing of mqttc (bytes from a broker, for
 * `weir probe` and `weir replay`) and the CSV line splitter and time parser
 * of `weir replay` (a file).
 *
 * The input is used three ways: as a byte stream cut into MQTT packets
 * (every PUBLISH parsed, every view checked to lie inside the input), as
 * CSV lines split in place, and each field's text as a time cell.
 *
 * Seeds: tests/fuzz/corpus/fuzz_cli/.
 */
#include "cli/mqttc.h"
#include "cli/replay_csv.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* MQTT: frames and PUBLISH bodies. */
    size_t off = 0;
    while (off < size) {
        size_t hdr, rem;
        int f = mqttc_frame(data + off, size - off, &hdr, &rem);
        if (f <= 0)
            break;
        assert(hdr >= 2 && hdr <= 5 && off + hdr + rem <= size);
        const uint8_t *body = data + off + hdr;
        mqttc_pub pub;
        if ((data[off] >> 4) == 3 && mqttc_parse_publish(data[off], body, rem, &pub) == 0) {
            assert((const uint8_t *)pub.topic >= body && pub.payload >= body);
            assert((const uint8_t *)pub.topic + pub.topic_len <= body + rem);
            assert(pub.payload + pub.len == body + rem);
        }
        off += hdr + rem;
    }

    /* CSV lines and time cells. */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *cols[64];
        int n = replay_csv_split(line, cols, 64);
        assert(n >= 1 && n <= 64);
        for (int i = 0; i < n; i++) {
            char *t = replay_trim(cols[i]);
            (void)replay_parse_time_ms(t);
        }
    }
    free(copy);
    return 0;
}
