/* lstats.c -- see lstats.h. */
#include "base/lstats.h"
#include "base/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double lstats_bounds_ms[LSTATS_N_BOUNDS] = {0.05, 0.1,  0.2,  0.5,  1,    2,
                                                  5,    10,   20,   50,   100,  200,
                                                  500,  1000, 2000, 5000, 10000, 30000};

void lstats_init(lstats *s, size_t max_samples)
{
    memset(s, 0, sizeof(*s));
    s->max = max_samples ? max_samples : SIZE_MAX / sizeof(double);
}

void lstats_free(lstats *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

int lstats_add(lstats *s, double ms)
{
    if (s->n == s->max) {
        s->dropped++;
        return WEIR_EFULL;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        if (cap > s->max)
            cap = s->max;
        double *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return WEIR_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ms;
    return WEIR_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the ceil(p * n)-th smallest (1-based). */
static double rank(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    if (k < 1)
        k = 1;
    return v[k - 1];
}

void lstats_summarise(lstats *s, lstats_summary *out)
{
    memset(out, 0, sizeof(*out));
    if (!s->n)
        return;
    qsort(s->v, s->n, sizeof(double), cmp_double);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->v[i];
    double avg = sum / (double)s->n, var = 0;
    for (size_t i = 0; i < s->n; i++)
        var += (s->v[i] - avg) * (s->v[i] - avg);
    out->n = s->n;
    out->min = s->v[0];
    out->max = s->v[s->n - 1];
    out->avg = avg;
    out->std = sqrt(var / (double)s->n);
    out->p95 = rank(s->v, s->n, 0.95);
    out->p99 = rank(s->v, s->n, 0.99);
}

void lstats_histogram(const lstats *s, uint64_t *counts)
{
    memset(counts, 0, (LSTATS_N_BOUNDS + 1) * sizeof(*counts));
    for (size_t i = 0; i < s->n; i++) {
        size_t b = 0;
        while (b < LSTATS_N_BOUNDS && s->v[i] > lstats_bounds_ms[b])
            b++;
        counts[b]++;
    }
}
