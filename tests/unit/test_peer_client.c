/* test_peer_client.c -- the node.peers list (http/peer_client.h): lookup,
 * validation, and a POST to a port where nobody listens (the error path of
 * the blocking client, which the integration tests reach through the API). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "http/peer_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_lookup(void **state)
{
    (void)state;
    char url[PEER_URL_MAX], err[200];
    const char *peers = " edge=http://127.0.0.1:8081 , core = https://core.plant:8443/ ";
    assert_int_equal(peer_lookup(peers, "edge", url, sizeof(url)), WEIR_OK);
    assert_string_equal(url, "http://127.0.0.1:8081");
    assert_int_equal(peer_lookup(peers, "core", url, sizeof(url)), WEIR_OK);
    assert_string_equal(url, "https://core.plant:8443"); /* no trailing '/' */
    assert_int_equal(peer_lookup(peers, "cor", url, sizeof(url)), WEIR_ENOTFOUND);
    assert_int_equal(peer_lookup(peers, "", url, sizeof(url)), WEIR_ENOTFOUND);
    assert_int_equal(peer_lookup("", "edge", url, sizeof(url)), WEIR_ENOTFOUND);
    assert_int_equal(peer_lookup(NULL, "edge", url, sizeof(url)), WEIR_ENOTFOUND);
    assert_int_equal(peer_lookup(peers, "edge", url, 8), WEIR_EINVAL); /* does not fit */

    assert_int_equal(peer_list_check(peers, err, sizeof(err)), WEIR_OK);
    assert_int_equal(peer_list_check("", err, sizeof(err)), WEIR_OK);
    assert_int_equal(peer_list_check("edge", err, sizeof(err)), WEIR_EINVAL);
    assert_non_null(strstr(err, "name=url"));
    assert_int_equal(peer_list_check("=http://x", err, sizeof(err)), WEIR_EINVAL);
    assert_int_equal(peer_list_check("edge=ftp://x", err, sizeof(err)), WEIR_EINVAL);
    assert_non_null(strstr(err, "http://"));
    assert_int_equal(peer_list_check("edge=http://", err, sizeof(err)), WEIR_EINVAL);
}

static void test_post_unreachable(void **state)
{
    (void)state;
    /* A port that was just free: bind, read the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(peer_client_init(), WEIR_OK);
    peer_response r;
    assert_int_equal(peer_post(base, "/api/install", "{}", 2, NULL, 2000, &r), WEIR_EIO);
    assert_int_equal(r.status, 0);
    assert_true(r.error[0] != '\0');
    peer_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_post_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
