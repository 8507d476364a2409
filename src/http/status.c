/* status.c -- see status.h.
 *
 * The table lists only errors whose status is not 500; an error not listed
 * is a server-side failure. A new weir_err that clients can cause needs a
 * row here.
 */
#include "http/status.h"
#include "base/err.h"

#include <stddef.h>

static const struct {
    int err;
    int status;
} http__status_map[] = {
    {WEIR_OK, 200},        {WEIR_EINVAL, 400},       {WEIR_EMALFORMED, 400}, {WEIR_EPROTO, 400},
    {WEIR_EUTF8, 400},     {WEIR_ETOPIC, 400},       {WEIR_EAUTH, 401},      {WEIR_EDENIED, 403},
    {WEIR_ENOTFOUND, 404}, {WEIR_EEXIST, 409},       {WEIR_ETOOBIG, 413},    {WEIR_EQUOTA, 429},
    {WEIR_EFULL, 429},     {WEIR_EUNSUPPORTED, 501}, {WEIR_EBUSY, 503},      {WEIR_ESHUTDOWN, 503},
    {WEIR_ETIMEDOUT, 504},
};

int http_status_from_err(int err)
{
    for (size_t i = 0; i < sizeof(http__status_map) / sizeof(http__status_map[0]); i++)
        if (http__status_map[i].err == err)
            return http__status_map[i].status;
    return 500;
}
