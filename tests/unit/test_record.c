/* test_record.c -- the arena, the typed record, its storage encoding and its
 * JSON form: every type, the canonical-encoding property on hand-made and
 * random records, rejection of every kind of bad encoding, and
 * record_to_json read back by jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "record/record.h"
#include "record/record_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------- */

static void test_arena_basic(void **state)
{
    arena a;
    arena_init(&a, 0);
    assert_int_equal(arena_footprint(&a), 0);
    void *p = arena_alloc(&a, 10);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    void *q = arena_alloc(&a, 3);
    assert_int_equal((uintptr_t)q % _Alignof(max_align_t), 0);
    assert_true((char *)q >= (char *)p + 10);
    char *s = arena_strdup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    uint8_t bytes[3] = {1, 2, 3};
    uint8_t *m = arena_memdup(&a, bytes, 3);
    assert_memory_equal(m, bytes, 3);
    /* A request larger than any chunk gets its own chunk. */
    char *big = arena_alloc(&a, 100000);
    assert_non_null(big);
    memset(big, 0xAB, 100000);
    assert_true(arena_footprint(&a) > 100000);
    /* Reset keeps only the first chunk, and reuses it. */
    arena_reset(&a);
    size_t first = arena_footprint(&a);
    assert_true(first > 0 && first < 100000);
    void *again = arena_alloc(&a, 10);
    assert_ptr_equal(again, p);
    assert_int_equal(arena_footprint(&a), first);
    arena_free(&a);
    assert_int_equal(arena_footprint(&a), 0);
    /* Usable after free. */
    assert_non_null(arena_alloc(&a, 1));
    assert_non_null(arena_alloc(&a, 0));
    arena_free(&a);
}

static void test_arena_bound(void **state)
{
    arena a;
    arena_init(&a, 2048);
    /* Every byte counts, headers included: the total never passes 2048. */
    size_t got = 0;
    while (arena_alloc_bytes(&a, 100))
        got += 100;
    assert_true(got > 1000);
    assert_true(arena_footprint(&a) <= 2048);
    assert_int_equal(arena_last_error(&a), WEIR_ETOOBIG);
    /* A failure changes nothing: smaller requests may still fit. */
    size_t before = arena_footprint(&a);
    assert_null(arena_alloc(&a, 5000));
    assert_int_equal(arena_footprint(&a), before);
    arena_reset(&a);
    assert_int_equal(arena_last_error(&a), WEIR_OK);
    assert_non_null(arena_alloc(&a, 1000));
    assert_null(arena_alloc(&a, 4096));
    assert_null(arena_strdup(&a, "x", SIZE_MAX));
    arena_free(&a);

    /* A bound smaller than a chunk header allows nothing. */
    arena_init(&a, 8);
    assert_null(arena_alloc(&a, 1));
    assert_int_equal(arena_last_error(&a), WEIR_ETOOBIG);
    arena_free(&a);

    /* Many growths stay within the bound exactly. */
    arena_init(&a, 1 << 20);
    while (arena_alloc(&a, 777))
        ;
    assert_true(arena_footprint(&a) <= (1 << 20));
    assert_true(arena_footprint(&a) > (1 << 20) - 64 * 1024);
    arena_free(&a);
}

/* ---- values ---------------------------------------------------------------- */

/* Initializers of rec_value (use as (rec_value)X(...) in expressions). */
#define STR(x)                                                                                     \
    {                                                                                              \
        .type = REC_STRING, .u.s = { x, sizeof(x) - 1 }                                            \
    }
#define JSN(x)                                                                                     \
    {                                                                                              \
        .type = REC_JSON, .u.s = { x, sizeof(x) - 1 }                                              \
    }
#define INT(x)                                                                                     \
    {                                                                                              \
        .type = REC_INT, .u.i = (x)                                                                \
    }
#define DBL(x)                                                                                     \
    {                                                                                              \
        .type = REC_DOUBLE, .u.d = (x)                                                             \
    }
#define BOOL(x)                                                                                    \
    {                                                                                              \
        .type = REC_BOOL, .u.b = (x)                                                               \
    }
#define NUL                                                                                        \
    {                                                                                              \
        .type = REC_NULL                                                                           \
    }
#define FIELD(n, v)                                                                                \
    {                                                                                              \
        n, sizeof(n) - 1, v                                                                        \
    }

static rec_field every_type[] = {
    FIELD("null", NUL),
    FIELD("yes", BOOL(true)),
    FIELD("no", BOOL(false)),
    FIELD("zero", INT(0)),
    FIELD("neg", INT(-1)),
    FIELD("min", INT(INT64_MIN)),
    FIELD("max", INT(INT64_MAX)),
    FIELD("temp", DBL(21.53)),
    FIELD("negzero", DBL(-0.0)),
    FIELD("tiny", DBL(5e-324)),
    FIELD("huge", DBL(1.7976931348623157e308)),
    FIELD("third", DBL(1.0 / 3)),
    FIELD("device", STR("p07")),
    FIELD("empty", STR("")),
    FIELD("unicode", STR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
    FIELD("quotes", STR("a \"quoted\"\\ line\nnext\ttab\x01")),
    FIELD("nested", JSN("{\"a\":[1,2.5,\"x\"],\"b\":{}}")),
    FIELD("list", JSN("[]")),
    FIELD("", STR("an empty name is legal JSON")),
};

static void test_get_and_types(void **state)
{
    record r = {.fields = every_type, .n_fields = sizeof(every_type) / sizeof(every_type[0])};
    const rec_value *v = record_get(&r, "temp", 4);
    assert_non_null(v);
    assert_int_equal(v->type, REC_DOUBLE);
    assert_null(record_get(&r, "tem", 3));
    assert_null(record_get(&r, "temperature", 11));
    assert_non_null(record_get(&r, "", 0));
    assert_string_equal(rec_type_name(REC_JSON), "json");
    assert_string_equal(rec_type_name(REC_NULL), "null");
    assert_string_equal(rec_type_name((rec_type)99), "?");

    double d;
    assert_true(rec_value_as_double(record_get(&r, "max", 3), &d));
    assert_true(d == 9223372036854775807.0);
    assert_true(rec_value_as_double(record_get(&r, "yes", 3), &d) && d == 1.0);
    assert_true(rec_value_as_double(record_get(&r, "no", 2), &d) && d == 0.0);
    assert_true(rec_value_as_double(record_get(&r, "temp", 4), &d) && d == 21.53);
    d = 42;
    assert_false(rec_value_as_double(record_get(&r, "null", 4), &d));
    assert_false(rec_value_as_double(record_get(&r, "device", 6), &d));
    assert_false(rec_value_as_double(record_get(&r, "nested", 6), &d));
    assert_true(d == 42);
    static const struct {
        const char *s;
        bool ok;
        double v;
    } strs[] = {
        {"  60", true, 60},     {" 7.026666666666669947", true, 7.026666666666669947},
        {"6.5e+00", true, 6.5}, {"-3", true, -3},
        {"+4.5 ", true, 4.5},   {".5", true, 0.5},
        {"1e999", false, 0},    {"nan", false, 0},
        {"inf", false, 0},      {"0x10", false, 0},
        {"", false, 0},         {"  ", false, 0},
        {"1 2", false, 0},      {"12345678901234567890", true, 12345678901234567890.0},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        rec_value sv = {.type = REC_STRING, .u.s = {strs[i].s, (uint32_t)strlen(strs[i].s)}};
        double out = -1;
        bool ok = rec_value_as_double(&sv, &out);
        if (ok != strs[i].ok || (ok && out != strs[i].v))
            fail_msg("as_double(\"%s\") = %d %g", strs[i].s, ok, out);
    }
}

static void test_value_equal(void **state)
{
    rec_value a = DBL(0.0), b = DBL(-0.0);
    assert_false(rec_value_equal(&a, &b));
    a = (rec_value)DBL(NAN);
    b = a;
    assert_true(rec_value_equal(&a, &b));
    a = (rec_value)INT(1);
    b = (rec_value)DBL(1.0);
    assert_false(rec_value_equal(&a, &b));
    a = (rec_value)STR("ab");
    b = (rec_value)JSN("ab");
    assert_false(rec_value_equal(&a, &b));
    b = (rec_value)STR("ab");
    assert_true(rec_value_equal(&a, &b));
}

/* ---- storage encoding -------------------------------------------------------- */

static void assert_records_equal(const record *a, const record *b)
{
    assert_int_equal(a->n_fields, b->n_fields);
    for (uint32_t i = 0; i < a->n_fields; i++) {
        assert_int_equal(a->fields[i].name_len, b->fields[i].name_len);
        assert_memory_equal(a->fields[i].name, b->fields[i].name, a->fields[i].name_len);
        if (!rec_value_equal(&a->fields[i].v, &b->fields[i].v))
            fail_msg("field %u (%.*s) differs", i, a->fields[i].name_len, a->fields[i].name);
    }
}

static void test_encode_every_type(void **state)
{
    record r = {.ts = 123,
                .key = "k",
                .key_len = 1,
                .fields = every_type,
                .n_fields = sizeof(every_type) / sizeof(every_type[0])};
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(record_encode(&r, &b), WEIR_OK);
    assert_int_equal(buf_head(&b)[0], RECORD_FORMAT_V1);
    arena a;
    arena_init(&a, 1 << 20);
    record d;
    assert_int_equal(record_decode(buf_head(&b), buf_used(&b), &a, &d), WEIR_OK);
    /* Key and ts are the store's business: not encoded. */
    assert_int_equal(d.ts, 0);
    assert_null(d.key);
    assert_records_equal(&r, &d);
    /* Decoding borrows the bytes: strings point into the buffer. */
    const rec_value *dev = record_get(&d, "device", 6);
    assert_true((const uint8_t *)dev->u.s.p > buf_head(&b) &&
                (const uint8_t *)dev->u.s.p < buf_head(&b) + buf_used(&b));
    /* Canonical: re-encoding gives the same bytes. */
    weir_buf b2;
    buf_init(&b2, 0);
    assert_int_equal(record_encode(&d, &b2), WEIR_OK);
    assert_int_equal(buf_used(&b), buf_used(&b2));
    assert_memory_equal(buf_head(&b), buf_head(&b2), buf_used(&b));
    buf_free(&b2);

    /* The exact bytes of a small record, pinned so that the format cannot
     * drift unnoticed. */
    rec_field f[] = {FIELD("t", DBL(1.0)), FIELD("n", INT(-2)), FIELD("s", STR("ab")),
                     FIELD("b", BOOL(true)), FIELD("z", NUL)};
    record small = {.fields = f, .n_fields = 5};
    buf_reset(&b);
    assert_int_equal(record_encode(&small, &b), WEIR_OK);
    static const uint8_t want[] = {
        0x01, 0x05,                                            /* version, 5 fields */
        0x01, 't',  0x04, 0,    0,   0,   0, 0, 0, 0xF0, 0x3F, /* t: DOUBLE 1.0 LE */
        0x01, 'n',  0x03, 0x03,                                /* n: INT zigzag(-2)=3 */
        0x01, 's',  0x05, 0x02, 'a', 'b',                      /* s: STRING "ab" */
        0x01, 'b',  0x02,                                      /* b: TRUE */
        0x01, 'z',  0x00,                                      /* z: NULL */
    };
    assert_int_equal(buf_used(&b), sizeof(want));
    assert_memory_equal(buf_head(&b), want, sizeof(want));

    /* An empty record. */
    record none = {0};
    buf_reset(&b);
    assert_int_equal(record_encode(&none, &b), WEIR_OK);
    assert_int_equal(buf_used(&b), 2);
    assert_int_equal(record_decode(buf_head(&b), 2, &a, &d), WEIR_OK);
    assert_int_equal(d.n_fields, 0);

    /* A full buffer leaves it unchanged. */
    weir_buf tiny;
    buf_init(&tiny, 8);
    assert_int_equal(record_encode(&r, &tiny), WEIR_EFULL);
    assert_int_equal(buf_used(&tiny), 0);
    assert_int_equal(record_to_json(&r, &tiny), WEIR_EFULL);
    assert_int_equal(buf_used(&tiny), 0);
    buf_free(&tiny);

    /* A type no decoder makes. */
    rec_field badf[] = {{"x", 1, {.type = (rec_type)42}}};
    record bad = {.fields = badf, .n_fields = 1};
    assert_int_equal(record_encode(&bad, &b), WEIR_EINVAL);
    buf_free(&b);
    arena_free(&a);
}

/* Appends bytes to a scratch buffer, for building bad encodings. */
typedef struct bytes {
    uint8_t b[256];
    size_t n;
} bytes;

static void put(bytes *x, const char *s, size_t n)
{
    memcpy(x->b + x->n, s, n);
    x->n += n;
}

static void test_decode_rejects(void **state)
{
    static const struct {
        const char *what;
        const char *b;
        size_t n;
        int rc;
    } bad[] = {
        {"empty", "", 0, WEIR_EMALFORMED},
        {"version 2", "\x02\x00", 2, WEIR_EVERSION},
        {"version 0", "\x00\x00", 2, WEIR_EVERSION},
        {"no count", "\x01", 1, WEIR_EMALFORMED},
        {"count beyond bytes",
         "\x01\x02\x01"
         "a\x00",
         5, WEIR_EMALFORMED},
        {"huge count", "\x01\xff\xff\xff\xff\x0f", 6, WEIR_EMALFORMED},
        {"trailing byte",
         "\x01\x01\x01"
         "a\x00\x00",
         6, WEIR_EMALFORMED},
        {"truncated name",
         "\x01\x01\x05"
         "ab",
         5, WEIR_EMALFORMED},
        {"no tag",
         "\x01\x01\x01"
         "a",
         4, WEIR_EMALFORMED},
        {"unknown tag",
         "\x01\x01\x01"
         "a\x07",
         5, WEIR_EMALFORMED},
        {"tag 0xff",
         "\x01\x01\x01"
         "a\xff",
         5, WEIR_EMALFORMED},
        {"overlong varint count",
         "\x01\x81\x00\x01"
         "a\x00",
         6, WEIR_EMALFORMED},
        {"overlong int",
         "\x01\x01\x01"
         "a\x03\x80\x00",
         7, WEIR_EMALFORMED},
        {"11-byte varint",
         "\x01\x01\x01"
         "a\x03\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
         16, WEIR_EMALFORMED},
        {"varint past 64 bits",
         "\x01\x01\x01"
         "a\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
         15, WEIR_EMALFORMED},
        {"truncated varint",
         "\x01\x01\x01"
         "a\x03\x80",
         6, WEIR_EMALFORMED},
        {"short double",
         "\x01\x01\x01"
         "a\x04\x00\x00\x00",
         8, WEIR_EMALFORMED},
        {"string past end",
         "\x01\x01\x01"
         "a\x05\x05"
         "abc",
         9, WEIR_EMALFORMED},
        {"string bad utf8",
         "\x01\x01\x01"
         "a\x05\x01\xff",
         7, WEIR_EMALFORMED},
        {"string overlong utf8",
         "\x01\x01\x01"
         "a\x05\x02\xc0\xaf",
         8, WEIR_EMALFORMED},
        {"string surrogate",
         "\x01\x01\x01"
         "a\x05\x03\xed\xa0\x80",
         9, WEIR_EMALFORMED},
        {"name bad utf8", "\x01\x01\x01\xfe\x00", 5, WEIR_EMALFORMED},
        {"name over 65535", "\x01\x01\x80\x80\x04", 5, WEIR_EMALFORMED},
        {"json not json",
         "\x01\x01\x01"
         "a\x06\x03"
         "abc",
         9, WEIR_EMALFORMED},
        {"json scalar",
         "\x01\x01\x01"
         "a\x06\x01"
         "1",
         7, WEIR_EMALFORMED},
        {"json truncated",
         "\x01\x01\x01"
         "a\x06\x05"
         "[1,2,",
         11, WEIR_EMALFORMED},
        {"json duplicate keys",
         "\x01\x01\x01"
         "a\x06\x0d"
         "{\"x\":1,\"x\":2}",
         19, WEIR_EMALFORMED},
        {"duplicate names",
         "\x01\x02\x01"
         "a\x00\x01"
         "a\x00",
         8, WEIR_EMALFORMED},
    };
    arena a;
    arena_init(&a, 1 << 16);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        record r;
        r.n_fields = 77;
        /* An exact-size heap copy, so that ASan sees any read past it. */
        uint8_t *copy = malloc(bad[i].n ? bad[i].n : 1);
        memcpy(copy, bad[i].b, bad[i].n);
        int rc = record_decode(copy, bad[i].n, &a, &r);
        free(copy);
        if (rc != bad[i].rc)
            fail_msg("%s: got %s, want %s", bad[i].what, weir_err_name(rc),
                     weir_err_name(bad[i].rc));
        assert_int_equal(r.n_fields, 0);
        assert_null(r.fields);
    }
    /* And a few that are fine. */
    static const char good[] = "\x01\x02\x01"
                               "a\x06\x0b"
                               "{\"x\":[1,2]}"
                               "\x01"
                               "b\x06\x16"
                               "[12345678901234567890]";
    bytes ok = {.n = 0};
    put(&ok, good, sizeof(good) - 1);
    record r;
    assert_int_equal(record_decode(ok.b, ok.n, &a, &r), WEIR_OK);
    assert_int_equal(r.n_fields, 2);
    /* Many fields: duplicates are found through the index too. */
    bytes many = {.n = 0};
    put(&many, "\x01\x28", 2); /* 40 fields */
    for (int i = 0; i < 40; i++) {
        char nm[3] = {'f', (char)('A' + i), 0};
        put(&many, "\x02", 1);
        put(&many, nm, 2);
        put(&many, "\x00", 1);
    }
    assert_int_equal(record_decode(many.b, many.n, &a, &r), WEIR_OK);
    assert_int_equal(r.n_fields, 40);
    many.b[many.n - 2] = 'A'; /* the last name repeats the first */
    assert_int_equal(record_decode(many.b, many.n, &a, &r), WEIR_EMALFORMED);
    /* Too little arena. */
    arena small;
    arena_init(&small, 64);
    assert_int_equal(record_decode(ok.b, ok.n, &small, &r), WEIR_ETOOBIG);
    arena_free(&small);
    arena_free(&a);
}

/* ---- random records ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible across runs and platforms. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A random valid UTF-8 string of up to max bytes into buf. */
static size_t rnd_utf8(char *buf, size_t max)
{
    static const char *const pieces[] = {
        "a",  "Z",    "0",    " ",        "\"",           "\\",
        "\n", "\x01", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "/"};
    size_t n = 0, want = rnd() % (max + 1);
    while (n < want) {
        const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t l = strlen(p);
        if (n + l > max)
            break;
        memcpy(buf + n, p, l);
        n += l;
    }
    return n;
}

static double rnd_double(void)
{
    switch (rnd() % 6) {
    case 0:
        return (double)(int64_t)rnd() / (double)(rnd() | 1);
    case 1: {
        uint64_t bits = rnd();
        double d;
        memcpy(&d, &bits, 8);
        return isfinite(d) ? d : 0.5;
    }
    case 2:
        return (double)(rnd() % 100000) / 100.0;
    case 3:
        return -0.0;
    case 4:
        return ldexp(1.0, (int)(rnd() % 2000) - 1000);
    default:
        return (double)(rnd() % 1000);
    }
}

/* Fills r with n random fields in the arena; returns false on a name clash
 * (the caller retries). */
static void rnd_record(arena *a, record *r)
{
    static const char *const jsons[] = {"{}", "[]", "[1,2.5,\"x\",null,true]",
                                        "{\"a\":{\"b\":[{}]}}", "[12345678901234567890]"};
    uint32_t n = (uint32_t)(rnd() % 40);
    rec_field *f = arena_alloc(a, (n ? n : 1) * sizeof(rec_field));
    for (uint32_t i = 0; i < n; i++) {
        char *name = arena_alloc_bytes(a, 24);
        int len = snprintf(name, 24, "f%u_", i);
        len += (int)rnd_utf8(name + len, (size_t)(23 - len));
        f[i].name = name;
        f[i].name_len = (uint16_t)len;
        rec_value *v = &f[i].v;
        v->type = (rec_type)(rnd() % REC_TYPE_COUNT);
        switch (v->type) {
        case REC_NULL:
            break;
        case REC_BOOL:
            v->u.b = rnd() & 1;
            break;
        case REC_INT:
            v->u.i = (int64_t)rnd() >> (rnd() % 64);
            break;
        case REC_DOUBLE:
            v->u.d = rnd_double();
            break;
        case REC_STRING: {
            char *s = arena_alloc_bytes(a, 300);
            v->u.s.len = (uint32_t)rnd_utf8(s, rnd() % 5 ? 20 : 300);
            v->u.s.p = s;
            break;
        }
        case REC_JSON: {
            const char *j = jsons[rnd() % (sizeof(jsons) / sizeof(jsons[0]))];
            v->u.s.p = j;
            v->u.s.len = (uint32_t)strlen(j);
            break;
        }
        }
    }
    r->fields = f;
    r->n_fields = n;
}

/* Checks that the JSON form of r reads back (jansson) to r's values. A big
 * integer inside a JSON field makes jansson read every integer as a real;
 * then INT fields are compared as doubles. */
static void check_json_form(const record *r, const char *text, size_t len)
{
    json_error_t je;
    bool as_real = false;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!o && json_error_code(&je) == json_error_numeric_overflow) {
        as_real = true;
        o = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    }
    if (!o)
        fail_msg("record_to_json gave invalid JSON (%s): %.*s", je.text, (int)len, text);
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), r->n_fields);
    size_t k = 0;
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it), k++) {
        const rec_field *f = &r->fields[k];
        assert_int_equal(json_object_iter_key_len(it), f->name_len);
        assert_memory_equal(json_object_iter_key(it), f->name, f->name_len);
        json_t *j = json_object_iter_value(it);
        switch (f->v.type) {
        case REC_NULL:
            assert_true(json_is_null(j));
            break;
        case REC_BOOL:
            assert_true(json_is_boolean(j) && json_is_true(j) == f->v.u.b);
            break;
        case REC_INT:
            if (as_real) {
                assert_true(json_is_real(j) && json_real_value(j) == (double)f->v.u.i);
            } else {
                assert_true(json_is_integer(j));
                assert_true(json_integer_value(j) == f->v.u.i);
            }
            break;
        case REC_DOUBLE:
            if (!isfinite(f->v.u.d)) {
                assert_true(json_is_null(j));
            } else {
                assert_true(json_is_real(j));
                double got = json_real_value(j);
                if (memcmp(&got, &f->v.u.d, 8) != 0)
                    fail_msg("double %.17g came back as %.17g", f->v.u.d, got);
            }
            break;
        case REC_STRING:
            assert_true(json_is_string(j));
            assert_int_equal(json_string_length(j), f->v.u.s.len);
            assert_memory_equal(json_string_value(j), f->v.u.s.p, f->v.u.s.len);
            break;
        case REC_JSON: {
            /* Compare with both sides read the same way (integers as reals). */
            json_t *want = json_loadb(f->v.u.s.p, f->v.u.s.len, JSON_DECODE_INT_AS_REAL, &je);
            assert_non_null(want);
            char *again = json_dumps(j, JSON_COMPACT);
            json_t *got = json_loads(again, JSON_DECODE_INT_AS_REAL, &je);
            assert_true(json_equal(want, got));
            free(again);
            json_decref(got);
            json_decref(want);
            break;
        }
        }
    }
    json_decref(o);
}

static void test_random_round_trip(void **state)
{
    arena a, d;
    arena_init(&a, 1 << 20);
    arena_init(&d, 1 << 20);
    weir_buf b, b2, js;
    buf_init(&b, 0);
    buf_init(&b2, 0);
    buf_init(&js, 0);
    for (int iter = 0; iter < 3000; iter++) {
        arena_reset(&a);
        arena_reset(&d);
        record r;
        rnd_record(&a, &r);
        buf_reset(&b);
        buf_reset(&b2);
        buf_reset(&js);
        assert_int_equal(record_encode(&r, &b), WEIR_OK);
        record back;
        int rc = record_decode(buf_head(&b), buf_used(&b), &d, &back);
        if (rc)
            fail_msg("iteration %d: decode %s", iter, weir_err_name(rc));
        assert_records_equal(&r, &back);
        assert_int_equal(record_encode(&back, &b2), WEIR_OK);
        assert_int_equal(buf_used(&b), buf_used(&b2));
        assert_memory_equal(buf_head(&b), buf_head(&b2), buf_used(&b));
        /* Every strict prefix is rejected (no record is a prefix of
         * another); check a few to keep the test fast. */
        for (size_t cut = 0; cut < buf_used(&b); cut += 1 + buf_used(&b) / 7) {
            record t;
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, buf_head(&b), cut);
            assert_int_not_equal(record_decode(copy, cut, &d, &t), WEIR_OK);
            free(copy);
        }
        assert_int_equal(record_to_json(&r, &js), WEIR_OK);
        check_json_form(&r, (const char *)buf_head(&js), buf_used(&js));
    }
    buf_free(&b);
    buf_free(&b2);
    buf_free(&js);
    arena_free(&a);
    arena_free(&d);
}

/* ---- JSON form ----------------------------------------------------------------- */

static void test_to_json(void **state)
{
    rec_field f[] = {
        FIELD("device", STR("p07")),
        FIELD("t", DBL(21.53)),
        FIELD("one", DBL(1.0)),
        FIELD("n", INT(-5)),
        FIELD("ok", BOOL(true)),
        FIELD("z", NUL),
        FIELD("nan", DBL(NAN)),
        FIELD("inf", DBL(-INFINITY)),
        FIELD("big", DBL(1e300)),
        FIELD("j", JSN("[1,{\"a\":2}]")),
        FIELD("esc", STR("\"\\\n\x1f\xff\xc3")),
        FIELD("third", DBL(0.1 + 0.2)),
        FIELD("nz", DBL(-0.0)),
    };
    record r = {.fields = f, .n_fields = sizeof(f) / sizeof(f[0])};
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(record_to_json(&r, &b), WEIR_OK);
    const char *want =
        "{\"device\":\"p07\",\"t\":21.53,\"one\":1.0,\"n\":-5,\"ok\":true,\"z\":null,"
        "\"nan\":null,\"inf\":null,\"big\":1e+300,\"j\":[1,{\"a\":2}],"
        "\"esc\":\"\\\"\\\\\\n\\u001f\xef\xbf\xbd\xef\xbf\xbd\","
        "\"third\":0.30000000000000004,\"nz\":-0.0}";
    assert_int_equal(buf_used(&b), strlen(want));
    assert_memory_equal(buf_head(&b), want, strlen(want));
    /* Appends, never resets. */
    assert_int_equal(record_to_json(&r, &b), WEIR_OK);
    assert_int_equal(buf_used(&b), 2 * strlen(want));
    buf_free(&b);

    char num[32];
    static const struct {
        double d;
        const char *s;
    } nums[] = {
        {0.1, "0.1"},        {100, "100.0"},
        {1e15, "1e+15"},     {123456789012345.0, "123456789012345.0"},
        {5e-324, "5e-324"},  {1.0 / 3, "0.3333333333333333"},
        {2.5e-7, "2.5e-07"}, {-1.5, "-1.5"},
        {1e21, "1e+21"},     {9007199254740993.0, "9007199254740992.0"},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        size_t len = rec_format_double(nums[i].d, num);
        if (strcmp(num, nums[i].s) != 0 || len != strlen(num))
            fail_msg("format %.17g: got %s, want %s", nums[i].d, num, nums[i].s);
    }
}

/* rec__parse_number's fast path gives exactly strtod's double. */
static void test_number_parse(void **state)
{
    char buf[64];
    for (int iter = 0; iter < 200000; iter++) {
        int n = 0;
        if (rnd() & 1)
            buf[n++] = '-';
        int digits = 1 + (int)(rnd() % 20), dot = (int)(rnd() % (digits + 1));
        for (int k = 0; k < digits; k++) {
            if (k == dot && k > 0)
                buf[n++] = '.';
            buf[n++] = (char)('0' + rnd() % 10);
        }
        if (rnd() % 3 == 0)
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "e%d", (int)(rnd() % 80) - 40);
        buf[n] = '\0';
        int64_t i;
        double d;
        rec__numkind k = rec__parse_number(buf, (size_t)n, &i, &d);
        assert_int_not_equal(k, REC__NUM_NONE);
        if (k == REC__NUM_INT) {
            assert_true(i == strtoll(buf, NULL, 10));
            continue;
        }
        double want = strtod(buf, NULL);
        if (memcmp(&d, &want, 8) != 0)
            fail_msg("%s: got %.17g, strtod %.17g", buf, d, want);
    }
    static const char *const not_numbers[] = {"",      "-",  "+",  ".",    "e5",  "1e",  "1e+",
                                              "1.2.3", "1x", " 1", "0x10", "nan", "inf", "--1"};
    for (size_t k = 0; k < sizeof(not_numbers) / sizeof(not_numbers[0]); k++) {
        int64_t i;
        double d;
        assert_int_equal(rec__parse_number(not_numbers[k], strlen(not_numbers[k]), &i, &d),
                         REC__NUM_NONE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_basic),       cmocka_unit_test(test_arena_bound),
        cmocka_unit_test(test_get_and_types),     cmocka_unit_test(test_value_equal),
        cmocka_unit_test(test_encode_every_type), cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_random_round_trip), cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_number_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
