/* agg.h -- the aggregate functions of weir's SQL, as a table of
 * accumulators built for windows and checkpoints.
 *
 * An aggregate is a descriptor (sql_agg) over a caller-owned state of
 * exactly state_size bytes, aligned for any type: the window operator
 * keeps one state per group and pane, in its own memory, and nothing in a
 * state points outside it. That makes the four things windows need cheap:
 *
 * - add: fold one row in (args are the evaluated per-row arguments; ts is
 *   the row's event time, used by first/last).
 * - merge: fold another state of the same aggregate into this one, so a
 *   hopping window is the merge of its panes and a parallel scan the merge
 *   of its parts. merge(a, b) gives the same result as adding a's rows then
 *   b's rows (exactly for count/min/max/first/last, to rounding for the
 *   floating ones, and within the documented bound for the percentile).
 * - remove (optional, NULL when not possible): take one previously added
 *   row out again, for sliding windows. count, sum, avg, the variances and
 *   the regressions support it; min, max, first, last and the percentile
 *   cannot forget a row with bounded memory, so a sliding window over them
 *   rebuilds from panes.
 * - serialize / deserialize: a portable byte form for checkpoints (little
 *   endian, a version byte first, independent of the struct layout), so a
 *   restarted node resumes its windows. deserialize checks everything and
 *   returns WEIR_ECORRUPT for bytes it does not accept.
 *
 * Aggregates ignore NULL inputs (SQL). count(*) counts rows. On no input,
 * count is 0 and everything else is NULL.
 *
 * ## Parameters
 *
 * Trailing arguments that are constant per call site (the p of
 * percentile_approx(x, 0.95), its optional compression) are parameters:
 * n_args says how many per-row arguments there are, and init receives the
 * parameters once. The planner checks they are constants.
 *
 * ## States and their memory (bytes per state, x86-64)
 *
 *   count, count_star                       8
 *   sum                                    40  INT sum while it fits, then DOUBLE (Neumaier)
 *   avg                                    24
 *   stddev, stddev_pop, variance, var_pop  24  Welford; Chan et al. to merge
 *   min, max, first, last                 296  value plus up to SQL_AGG_TEXT_MAX
 *                                              bytes of text inline; longer text is
 *                                              an error (WEIR_ETOOBIG)
 *   regr_slope, regr_intercept, covar,     48  co-moments (means, M2x, M2y, Cxy)
 *   corr
 *   percentile_approx / approx_percentile 7016  merging t-digest, at most
 *                                              SQL_PCT_MAX_CENTROIDS centroids
 *
 * ## The percentile sketch
 *
 * percentile_approx(x, p[, compression]) is a merging t-digest (Dunning &
 * Ertl 2019) with the k1 (arcsine) scale function: centroids are small at
 * the tails and large in the middle, so extreme quantiles are the most
 * accurate. compression delta (default 100, 20..SQL_PCT_MAX_COMPRESSION)
 * bounds the centroids to delta + 1; new points wait in a buffer of
 * SQL_PCT_BUFFER values and are merged in when it fills. The result
 * interpolates between centroid means and is exact for the minimum and
 * the maximum. Error bound, stated as rank error (the fraction of the
 * data between the estimate and the true quantile): at most 0.01 at
 * delta = 100 for any p, and 0.002 for p <= 0.01 or p >= 0.99; the tests
 * check this on 100k uniform and skewed (log-normal) values, and merged
 * digests are held to the same bound. With heavily repeated values (a
 * handful of distinct readings) the estimate can land between two
 * adjacent distinct values near the boundary of their masses, because
 * it interpolates between centroids: the rank error there can reach
 * about 5% at delta = 100 while the value error stays below
 * the gap between those two values; the tests check both on 7 distinct
 * values.
 */
#ifndef WEIR_SQL_AGG_H
#define WEIR_SQL_AGG_H

#include "base/buf.h"
#include "sql/value.h"

#include <stddef.h>
#include <stdint.h>

#define SQL_AGG_TEXT_MAX 256
#define SQL_PCT_MAX_COMPRESSION 300
#define SQL_PCT_MAX_CENTROIDS (SQL_PCT_MAX_COMPRESSION + 8)
#define SQL_PCT_BUFFER 256

typedef struct sql_agg sql_agg;

struct sql_agg {
    const char *name;    /* lower case */
    int n_args;          /* per-row arguments: 0 (count_star), 1, or 2 (y, x) */
    int min_params;      /* constant trailing arguments, fewest */
    int max_params;      /* and most */
    size_t state_size;   /* bytes the caller provides per state */
    rec_type result_type; /* result type; REC_NULL = the input's type (min, max, first, last, sum) */

    /* Prepares an empty state from the parameters (already evaluated
     * constants). WEIR_OK or WEIR_EINVAL for a bad parameter. */
    int (*init)(void *state, const rec_value *params, int n_params, sql_eval_error *err);
    /* Folds in one row. WEIR_OK, or WEIR_EINVAL for an argument of the
     * wrong type (the state is then unchanged). */
    int (*add)(void *state, const rec_value *args, int64_t ts, sql_eval_error *err);
    /* Takes out a row added before; NULL when the aggregate cannot. */
    int (*remove)(void *state, const rec_value *args, int64_t ts, sql_eval_error *err);
    /* Folds `other` (same aggregate, same parameters) into state. WEIR_OK or
     * WEIR_EINVAL (mismatched parameters, incomparable min/max values). */
    int (*merge)(void *state, const void *other, sql_eval_error *err);
    /* The current result; text is copied into the arena. The state stays
     * usable (results can be emitted early and again). */
    int (*result)(const void *state, rec_value *out, arena *a, sql_eval_error *err);
    /* Appends the checkpoint form; WEIR_EFULL / WEIR_ENOMEM from the buffer. */
    int (*serialize)(const void *state, weir_buf *out);
    /* Rebuilds a state from exactly n bytes; WEIR_ECORRUPT if invalid. */
    int (*deserialize)(void *state, const uint8_t *p, size_t n);

    const char *help; /* one line: signature and meaning */
};

/* The aggregate called name[0..len), any case; NULL when there is none.
 * "count" is count(x); the parser maps count(*) to "count_star". */
const sql_agg *sql_agg_find(const char *name, size_t len);

/* The whole table, for help output and tests; *n receives its length. */
const sql_agg *sql_agg_table(size_t *n);

#endif
