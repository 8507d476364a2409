#include "cli/cli.h"
#include <stdio.h>
int cli_replay(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "weir replay: not yet\n");
    return 1;
}
