/* template.h -- MQTT topic templates of rule outputs: "alerts/{device}/climate".
 *
 * Pure code (no I/O), fuzzed by tests/fuzz/fuzz_sink_template.c.
 *
 * A template is literal topic text with column references in braces. At
 * parse time it must be a plausible topic: 1..65535 bytes, no '+' or '#'
 * (a published topic has no wildcards), no NUL, not starting with '$'
 * (reserved for the broker's own topics), braces balanced and not nested,
 * each reference naming 1..255 bytes. "{{" and "}}" stand for literal braces.
 *
 * Expansion replaces each reference by the value of the row's column of
 * that name:
 *   STRING     its text; JSON its compact text
 *   INT        decimal; DOUBLE the shortest text that reads back
 *              (rec_format_double: 21.5, 1.0, 1e+300); NaN/inf "null"
 *   BOOL       true / false
 *   NULL       the level text "null" (the row is not lost)
 * A value always stays within its topic level and can never inject a
 * wildcard: '/', '+', '#', '%', control bytes (< 0x20, 0x7f), and a '$' at
 * the very start of the topic are percent-escaped (%2F %2B %23 %25 %XX
 * %24), as in a URL. A reference to a column the row does not have is an
 * error (WEIR_ENOTFOUND: the rule's SELECT does not produce it), as is an
 * expansion that is empty, starts with a literal '$' (after empty values)
 * or is longer than 65535 bytes (WEIR_ETOPIC / WEIR_ETOOBIG).
 */
#ifndef WEIR_SINK_TEMPLATE_H
#define WEIR_SINK_TEMPLATE_H

#include "base/buf.h"
#include "engine/rule.h"

#include <stddef.h>

#define SINK_TOPIC_MAX 65535

typedef struct sink_template sink_template;

/* Parses text[0..len). WEIR_OK; WEIR_ETOPIC / WEIR_EINVAL with a message in
 * err; WEIR_ENOMEM. */
int sink_template_parse(const char *text, size_t len, sink_template **out, char *err,
                        size_t errlen);
void sink_template_free(sink_template *t);

/* Number of column references and the name of the i-th (NUL-terminated). */
unsigned sink_template_n_refs(const sink_template *t);
const char *sink_template_ref(const sink_template *t, unsigned i);

/* Appends the topic for row to out, NUL-terminated (the NUL is not part of
 * the topic; *topic_len says its length). On error out is left as it was
 * and err says why. */
int sink_template_expand(const sink_template *t, const eng_row *row, weir_buf *out,
                         size_t *topic_len, char *err, size_t errlen);

#endif
