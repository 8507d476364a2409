/* main.c -- the composition root's front: picks the subcommand and runs it.
 *
 * Wiring of a running node (which module feeds which) lives in node.c; this
 * file only dispatches.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"serve", "run a weir node (MQTT broker, HTTP API, dashboard)", cli_serve},
    {"import", "import an archived CSV/NDJSON/line-protocol file into a stream", cli_import},
    {"tail", "print a stream's records as JSON lines, optionally following", cli_tail},
    {"check", "verify a stopped node's data directory offline", cli_check},
    {"keygen", "write a new random key for encryption at rest", cli_keygen},
    {"sql", "run a SQL history query against a running node", cli_sql},
    {"probe", "measure end-to-end latency (DPC..LPDS, LPS) of a running node", cli_probe},
    {"replay", "replay a CSV file over MQTT as simulated devices", cli_replay},
    {"rule", "list, create, start, stop, restart or delete continuous rules", cli_rule},
    {"version", "print the version and library versions", cli_version},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: weir <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`weir <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "weir: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
