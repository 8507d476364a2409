/* replay_csv.h -- the pieces of `weir replay` that read outside input (a
 * CSV file): pure functions, so that tests/fuzz/fuzz_cli.c can drive them.
 */
#ifndef WEIR_CLI_REPLAY_CSV_H
#define WEIR_CLI_REPLAY_CSV_H

#include <stdint.h>

/* Splits one CSV line in place (RFC 4180 quotes, "" inside quotes; a
 * trailing newline is dropped). Returns the number of fields (at most max);
 * out[i] point into line. */
int replay_csv_split(char *line, char **out, int max);

/* Drops leading and trailing white space in place; returns the new start. */
char *replay_trim(char *s);

/* A time cell as epoch ms: "YYYY-MM-DD[ T]HH:MM:SS[.fff]" (UTC) or an epoch
 * number (s, ms, us or ns by magnitude). INT64_MIN when unreadable. */
int64_t replay_parse_time_ms(const char *s);

#endif
