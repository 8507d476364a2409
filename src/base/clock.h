/* clock.h -- the two clocks weir reads.
 *
 * Monotonic time drives timeouts (keep-alive, will delay, expiry) because it
 * never jumps; wall-clock time is what records and logs carry. Both are in
 * nanoseconds in an int64_t, which lasts until the year 2262.
 */
#ifndef WEIR_BASE_CLOCK_H
#define WEIR_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define WEIR_NS_PER_MS 1000000LL
#define WEIR_NS_PER_S 1000000000LL

static inline int64_t weir_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * WEIR_NS_PER_S + ts.tv_nsec;
}

static inline int64_t weir_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * WEIR_NS_PER_S + ts.tv_nsec;
}

#endif
