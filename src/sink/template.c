/* template.c -- parsing and expansion of MQTT topic templates (template.h).
 *
 * A parsed template is a list of parts, each a literal (braces already
 * unescaped) or a column reference. Expansion writes into the caller's
 * buffer, escaping value bytes so that a value stays one topic level.
 */
#include "sink/template.h"

#include "base/err.h"
#include "record/record.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAX 255

typedef struct tpl_part {
    bool ref;   /* a column reference (text is its name) or a literal */
    char *text; /* NUL-terminated */
    size_t len;
} tpl_part;

struct sink_template {
    tpl_part *parts;
    unsigned n_parts;
    unsigned n_refs;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void sink_template_free(sink_template *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->n_parts; i++)
        free(t->parts[i].text);
    free(t->parts);
    free(t);
}

static int add_part(sink_template *t, bool ref, const char *p, size_t n)
{
    tpl_part *np = realloc(t->parts, (t->n_parts + 1) * sizeof(*np));
    if (!np)
        return WEIR_ENOMEM;
    t->parts = np;
    char *s = malloc(n + 1);
    if (!s)
        return WEIR_ENOMEM;
    memcpy(s, p, n);
    s[n] = '\0';
    t->parts[t->n_parts++] = (tpl_part){.ref = ref, .text = s, .len = n};
    if (ref)
        t->n_refs++;
    return WEIR_OK;
}

int sink_template_parse(const char *text, size_t len, sink_template **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    int rc = WEIR_ETOPIC;
    char *lit = NULL;
    sink_template *t = calloc(1, sizeof(*t));
    if (!t || !(lit = malloc(len + 1))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if (len == 0 || len > SINK_TOPIC_MAX) {
        set_err(err, errlen, "topic template must be 1..65535 bytes (it has %zu)", len);
        goto cleanup;
    }
    if (text[0] == '$') {
        set_err(err, errlen, "topic template must not start with '$'");
        goto cleanup;
    }
    size_t nlit = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\0' || c == '+' || c == '#') {
            set_err(err, errlen, "topic template: '%s' not allowed in a topic name (at %zu)",
                    c == '\0' ? "NUL" : (c == '+' ? "+" : "#"), i);
            goto cleanup;
        }
        if (c == '}') {
            if (i + 1 < len && text[i + 1] == '}') {
                lit[nlit++] = '}';
                i++;
                continue;
            }
            set_err(err, errlen, "topic template: unmatched '%s' (at %zu)", "}", i);
            goto cleanup;
        }
        if (c != '{') {
            lit[nlit++] = c;
            continue;
        }
        if (i + 1 < len && text[i + 1] == '{') {
            lit[nlit++] = '{';
            i++;
            continue;
        }
        size_t start = i + 1, j = start;
        while (j < len && text[j] != '}' && text[j] != '{' && text[j] != '\0')
            j++;
        if (j >= len || text[j] != '}') {
            set_err(err, errlen, "topic template: unterminated '%s' (at %zu)", "{", i);
            goto cleanup;
        }
        if (j == start || j - start > REF_MAX) {
            set_err(err, errlen, "topic template: a column name must be 1..255 bytes (at %zu)", i);
            goto cleanup;
        }
        if (nlit && (rc = add_part(t, false, lit, nlit)))
            goto cleanup;
        nlit = 0;
        if ((rc = add_part(t, true, text + start, j - start)))
            goto cleanup;
        rc = WEIR_ETOPIC;
        i = j;
    }
    if (nlit && (rc = add_part(t, false, lit, nlit)))
        goto cleanup;
    rc = WEIR_OK;
    *out = t;
    t = NULL;
cleanup:
    free(lit);
    sink_template_free(t);
    return rc;
}

unsigned sink_template_n_refs(const sink_template *t)
{
    return t->n_refs;
}

const char *sink_template_ref(const sink_template *t, unsigned i)
{
    for (unsigned k = 0; k < t->n_parts; k++)
        if (t->parts[k].ref && i-- == 0)
            return t->parts[k].text;
    return NULL;
}

/* Appends value bytes, escaping what must not appear inside one level. */
static int put_escaped(weir_buf *b, size_t topic_start, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool esc = c == '/' || c == '+' || c == '#' || c == '%' || c < 0x20 || c == 0x7f ||
                   (c == '$' && buf_used(b) == topic_start);
        int rc;
        if (esc) {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(b, e, 3);
        } else {
            rc = buf_append(b, &p[i], 1);
        }
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static int put_value(weir_buf *b, size_t topic_start, const rec_value *v)
{
    char tmp[64];
    size_t n;
    switch (v->type) {
    case REC_STRING:
    case REC_JSON:
        return put_escaped(b, topic_start, v->u.s.p, v->u.s.len);
    case REC_INT:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64, v->u.i);
        break;
    case REC_DOUBLE:
        n = rec_format_double(v->u.d, tmp);
        break;
    case REC_BOOL:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%s", v->u.b ? "true" : "false");
        break;
    default:
        n = (size_t)snprintf(tmp, sizeof(tmp), "null");
        break;
    }
    return put_escaped(b, topic_start, tmp, n);
}

int sink_template_expand(const sink_template *t, const eng_row *row, weir_buf *out,
                         size_t *topic_len, char *err, size_t errlen)
{
    size_t start = buf_used(out); /* offsets from out->off survive a compaction */
    int rc = WEIR_OK;
    for (unsigned k = 0; k < t->n_parts && rc == WEIR_OK; k++) {
        const tpl_part *p = &t->parts[k];
        if (!p->ref) {
            rc = buf_append(out, p->text, p->len);
            continue;
        }
        const rec_value *v = NULL;
        for (uint32_t c = 0; c < row->n_cols; c++)
            if (row->names[c] && strcmp(row->names[c], p->text) == 0) {
                v = &row->vals[c];
                break;
            }
        if (!v) {
            set_err(err, errlen, "topic template: the rule has no column '%s'", p->text);
            rc = WEIR_ENOTFOUND;
            break;
        }
        rc = put_value(out, start, v);
        if (rc == WEIR_OK && buf_used(out) - start > SINK_TOPIC_MAX)
            rc = WEIR_ETOOBIG;
    }
    size_t n = buf_used(out) - start;
    /* Empty, or a literal '$' brought to the front by empty values. */
    if (rc == WEIR_OK && (n == 0 || buf_head(out)[start] == '$'))
        rc = WEIR_ETOPIC;
    if (rc == WEIR_OK && n > SINK_TOPIC_MAX)
        rc = WEIR_ETOOBIG;
    if (rc == WEIR_OK)
        rc = buf_append(out, "", 1);
    if (rc) {
        if (rc == WEIR_ETOPIC)
            set_err(err, errlen, "topic template: the expanded topic is empty or starts with '$'");
        else if (rc == WEIR_ETOOBIG)
            set_err(err, errlen, "topic template: the expanded topic is longer than 65535 bytes");
        else if (rc != WEIR_ENOTFOUND)
            set_err(err, errlen, "topic template: %s", weir_strerror(rc));
        out->len = out->off + start;
        return rc;
    }
    *topic_len = n;
    return WEIR_OK;
}
