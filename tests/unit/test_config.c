/* test_config.c -- the option table: defaults, the INI file, flags, object
 * sections, and the value parsers shared with the rest of weir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/config.h"
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void test_parsers(void **state)
{
    (void)state;
    uint64_t v;
    int64_t ms;
    bool b;
    char host[64];
    int port;
    assert_int_equal(config_parse_size("4m", &v), 0);
    assert_int_equal(v, 4ull << 20);
    assert_int_equal(config_parse_size("16KB", &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(config_parse_size("-1", &v), WEIR_EINVAL);
    assert_int_equal(config_parse_size("1x", &v), WEIR_EINVAL);
    assert_int_equal(config_parse_size("99999999999999999999g", &v), WEIR_EINVAL);
    assert_int_equal(config_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(config_parse_duration_ms("14d", &ms), 0);
    assert_int_equal(ms, 14LL * 86400000);
    assert_int_equal(config_parse_duration_ms("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(config_parse_duration_ms("3w", &ms), WEIR_EINVAL);
    assert_int_equal(config_parse_bool("on", &b), 0);
    assert_true(b);
    assert_int_equal(config_parse_bool("maybe", &b), WEIR_EINVAL);
    assert_int_equal(config_parse_hostport("127.0.0.1:1883", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 1883);
    assert_int_equal(config_parse_hostport("[::1]:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(config_parse_hostport("nohost", host, sizeof(host), &port), WEIR_EINVAL);
    assert_int_equal(config_parse_hostport("h:70000", host, sizeof(host), &port), WEIR_EINVAL);
}

static void test_file_and_flags(void **state)
{
    (void)state;
    char path[] = "/tmp/weir-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *ini = "[node]\ndata_dir = /var/lib/weir\n"
                      "[mqtt]\nmax_queued_messages = 5000\ndeny = a/#,b\n"
                      "[stream.printers]\nsource = mqtt:factory/+/printer/+/telemetry\n"
                      "partitions = 4\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    weir_config c;
    char err[256];
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(c.mqtt_max_queued_messages, 1000);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.data_dir, "/var/lib/weir");
    assert_int_equal(c.mqtt_max_queued_messages, 5000);
    assert_string_equal(c.mqtt_deny, "a/#,b");
    /* Flags override the file. */
    assert_int_equal(config_set(&c, "mqtt.max_queued_messages", "7", err, sizeof(err)), 0);
    assert_int_equal(c.mqtt_max_queued_messages, 7);
    assert_int_equal(config_set(&c, "nope.key", "7", err, sizeof(err)), WEIR_EINVAL);
    assert_non_null(strstr(err, "unknown option"));
    /* Object sections are kept in file order for their owner. */
    config_object_kv *kv = c.objects;
    assert_non_null(kv);
    assert_string_equal(kv->kind, "stream");
    assert_string_equal(kv->name, "printers");
    assert_string_equal(kv->key, "source");
    assert_non_null(kv->next);
    assert_string_equal(kv->next->key, "partitions");
    assert_null(kv->next->next);
    config_free(&c);

    /* An unknown option or bad value names itself and fails. */
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *bad = "[mqtt]\nmax_packet_size = lots\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), WEIR_EINVAL);
    assert_non_null(strstr(err, "max_packet_size"));
    config_free(&c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_file_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
