/* cli.h -- the weir subcommands.
 *
 * Each subcommand is one file in cli/ exporting one entry point and one row
 * of the table in main.c; adding a command is adding a row. An entry point
 * gets argv starting at the subcommand's own name and returns the process
 * exit status.
 */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

typedef struct cli_command {
    const char *name;    /* "serve" */
    const char *summary; /* one line for `weir help` */
    int (*run)(int argc, char **argv);
} cli_command;

int cli_serve(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_tail(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_keygen(int argc, char **argv);
int cli_sql(int argc, char **argv);
int cli_probe(int argc, char **argv);
int cli_replay(int argc, char **argv);
int cli_rule(int argc, char **argv);

#endif
