/* fuzz_sink_template.c -- libFuzzer target for the MQTT topic templates of
 * rule outputs (src/sink/template.h).
 *
 * The input is a template up to the first '\n', then values separated by
 * '\n' for the template's column references in order (the last reference
 * with no value left is absent from the row, to reach the missing-column
 * error; a value "\x01N" is a NULL, "\x01I<digits>" an INT). An accepted
 * template must expand, when every column is there, to a topic that
 * - is 1..65535 bytes, NUL-terminated at the reported length,
 * - has no '+', '#' or NUL and does not start with '$',
 * - has exactly as many '/' as the template's literal text (a value never
 *   adds or removes a level).
 * Errors must leave the output buffer as it was.
 *
 * Seeds: tests/fuzz/corpus/fuzz_sink_template/.
 */
#include "base/err.h"
#include "sink/template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXV 16

/* Slashes in the literal text of a template (outside references). */
static size_t literal_slashes(const char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '{' && i + 1 < n && t[i + 1] == '{') {
            i++;
            continue;
        }
        if (t[i] == '}' && i + 1 < n && t[i + 1] == '}') {
            i++;
            continue;
        }
        if (t[i] == '{') {
            while (i < n && t[i] != '}')
                i++;
            continue;
        }
        if (t[i] == '/')
            k++;
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t tlen = nl ? (size_t)(nl - p) : size;
    char *tpl_text = malloc(tlen ? tlen : 1);
    memcpy(tpl_text, p, tlen);
    sink_template *t = NULL;
    char err[256];
    int rc = sink_template_parse(tpl_text, tlen, &t, err, sizeof(err));
    if (rc != WEIR_OK) {
        if (t || (rc != WEIR_ETOPIC && rc != WEIR_EINVAL && rc != WEIR_ENOMEM))
            abort();
        free(tpl_text);
        return 0;
    }
    unsigned nref = sink_template_n_refs(t);
    const char *names[MAXV];
    rec_value vals[MAXV];
    uint32_t ncols = 0;
    /* A reference has a value while input is left: "tpl" gives none,
     * "tpl\n" one empty value. */
    const char *rest = nl ? nl + 1 : NULL, *end = p + size;
    char *copies[MAXV] = {0};
    for (unsigned i = 0; i < nref && ncols < MAXV && rest; i++) {
        const char *e = memchr(rest, '\n', (size_t)(end - rest));
        size_t vlen = e ? (size_t)(e - rest) : (size_t)(end - rest);
        names[ncols] = sink_template_ref(t, i);
        rec_value v = {.type = REC_STRING};
        if (vlen >= 2 && rest[0] == '\x01' && rest[1] == 'N') {
            v.type = REC_NULL;
        } else if (vlen >= 2 && rest[0] == '\x01' && rest[1] == 'I') {
            char num[24] = {0};
            memcpy(num, rest + 2, vlen - 2 < sizeof(num) - 1 ? vlen - 2 : sizeof(num) - 1);
            v.type = REC_INT;
            v.u.i = strtoll(num, NULL, 10);
        } else {
            copies[ncols] = malloc(vlen ? vlen : 1);
            memcpy(copies[ncols], rest, vlen);
            v.u.s.p = copies[ncols];
            v.u.s.len = (uint32_t)vlen;
        }
        vals[ncols++] = v;
        rest = e ? e + 1 : NULL;
    }
    eng_row row = {.n_cols = ncols, .names = names, .vals = vals};
    weir_buf b;
    buf_init(&b, 0);
    buf_append(&b, "pre", 3);
    size_t n = 0;
    rc = sink_template_expand(t, &row, &b, &n, err, sizeof(err));
    if (rc == WEIR_OK) {
        const char *topic = (const char *)buf_head(&b) + 3;
        if (buf_used(&b) != 3 + n + 1 || topic[n] != '\0' || n == 0 || n > SINK_TOPIC_MAX)
            abort();
        if (memchr(topic, '+', n) || memchr(topic, '#', n) || memchr(topic, '\0', n) ||
            topic[0] == '$')
            abort();
        size_t slashes = 0;
        for (size_t i = 0; i < n; i++)
            slashes += topic[i] == '/';
        if (slashes != literal_slashes(tpl_text, tlen))
            abort();
    } else {
        if (buf_used(&b) != 3)
            abort();
        /* Only a missing column, an empty or too long topic, or memory. */
        if (rc != WEIR_ENOTFOUND && rc != WEIR_ETOPIC && rc != WEIR_ETOOBIG && rc != WEIR_ENOMEM)
            abort();
        if (rc == WEIR_ENOTFOUND && ncols == nref && nref <= MAXV)
            abort();
    }
    buf_free(&b);
    for (uint32_t i = 0; i < ncols; i++)
        free(copies[i]);
    sink_template_free(t);
    free(tpl_text);
    return 0;
}
