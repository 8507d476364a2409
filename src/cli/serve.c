/* serve.c -- `weir serve`: run a node with the embedded defaults, a config
 * file, and flags that override both. */
#include "base/config.h"
#include "base/err.h"
#include "cli/cli.h"
#include "node.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: weir serve [--config FILE] [--data DIR] [--mqtt HOST:PORT]\n"
               "                  [--http HOST:PORT] [--set SECTION.KEY=VALUE]...\n"
               "                  [--log-level LEVEL] [--print-config] [--demo]\n\n"
               "Flags override the config file, which overrides the defaults.\n"
               "--print-config prints every option with its value and help, then exits.\n"
               "--demo runs the demo profile ([demo] options): a climate stream fed by a\n"
               "replay of the UCI Appliances Energy file as 9 room devices.\n");
}

int cli_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"mqtt", required_argument, NULL, 'm'},   {"http", required_argument, NULL, 'H'},
        {"set", required_argument, NULL, 's'},    {"log-level", required_argument, NULL, 'l'},
        {"print-config", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {"demo", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    weir_config cfg;
    char err[512] = "";
    int status = 1;
    int print = 0;
    if (config_init(&cfg)) {
        fprintf(stderr, "weir serve: out of memory\n");
        return 1;
    }
    /* Two passes: the config file first, so flags win whatever their order. */
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:d:m:H:s:l:phD", longopts, NULL)) != -1) {
        if (c == 'c' && config_load_file(&cfg, optarg, err, sizeof(err)))
            goto bad;
        if (c == '?')
            goto usage;
        if (c == 'h') {
            serve_usage(stdout);
            status = 0;
            goto done;
        }
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:m:H:s:l:phD", longopts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'd':
            rc = config_set(&cfg, "node.data_dir", optarg, err, sizeof(err));
            break;
        case 'm':
            rc = config_set(&cfg, "mqtt.listen", optarg, err, sizeof(err));
            break;
        case 'H':
            rc = config_set(&cfg, "http.listen", optarg, err, sizeof(err));
            break;
        case 'l':
            rc = config_set(&cfg, "node.log_level", optarg, err, sizeof(err));
            break;
        case 's': {
            char name[128];
            const char *eq = strchr(optarg, '=');
            if (!eq || (size_t)(eq - optarg) >= sizeof(name)) {
                snprintf(err, sizeof(err), "--set wants SECTION.KEY=VALUE, got '%s'", optarg);
                goto bad;
            }
            memcpy(name, optarg, (size_t)(eq - optarg));
            name[eq - optarg] = '\0';
            rc = config_set(&cfg, name, eq + 1, err, sizeof(err));
            break;
        }
        case 'p':
            print = 1;
            break;
        case 'D':
            rc = config_set(&cfg, "demo.enabled", "true", err, sizeof(err));
            break;
        default:
            break;
        }
        if (rc)
            goto bad;
    }
    if (optind < argc) {
        snprintf(err, sizeof(err), "unexpected argument '%s'", argv[optind]);
        goto bad;
    }
    if (print) {
        config_print(&cfg, stdout);
        status = 0;
        goto done;
    }
    status = node_run(&cfg);
    goto done;
bad:
    fprintf(stderr, "weir serve: %s\n", err);
    goto done;
usage:
    serve_usage(stderr);
    status = 2;
done:
    config_free(&cfg);
    return status;
}
