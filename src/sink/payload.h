/* payload.h -- the JSON message a rule output sends for one row (MQTT
 * payload and webhook body alike).
 *
 *   {"device":"p1","t_avg":31.25,"_rule":"hot","_seq":42,"_ts":1732185000000,
 *    "_window_start":1732184995000,"_window_end":1732185000000}
 *
 * The row's columns come first, in SELECT order, written by record_to_json
 * (so values look exactly as in query results and the API: doubles in the
 * shortest form that reads back, NaN/inf as null, strings escaped and valid
 * UTF-8). Then:
 *   _rule      the rule name
 *   _seq       the rule's output sequence number: increases by one per row
 *              the rule hands to its output; a row delivered twice (at least
 *              once) carries the same _seq, so receivers drop duplicates
 *   _ts        the row's event time in milliseconds since the Unix epoch
 *              (an integer; a window result's ts is the window end)
 *   _window_start, _window_end   windowed results only (ms)
 *   _revision  only for late updates of a window already emitted (1, 2, ...)
 *   _late      true only on the side output of records too late for their
 *              window (the row is then the input record's columns)
 * A row column whose name is one of these reserved names is left out (the
 * reserved field wins), so the object never has duplicate keys.
 */
#ifndef WEIR_SINK_PAYLOAD_H
#define WEIR_SINK_PAYLOAD_H

#include "base/buf.h"
#include "engine/rule.h"

#include <stdint.h>

/* Appends the object to out. WEIR_OK; WEIR_EINVAL (a column name longer
 * than 65535 bytes); WEIR_EFULL / WEIR_ENOMEM with out left as it was. */
int sink_payload_json(const char *rule, const eng_row *row, uint64_t seq, weir_buf *out);

#endif
