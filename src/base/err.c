/* err.c -- names and messages of weir_err, generated from WEIR_ERR_MAP. */
#include "base/err.h"

const char *weir_err_name(int err)
{
    switch (err) {
    case WEIR_OK:
        return "OK";
#define WEIR__ERR_NAME(name, msg)                                              \
    case WEIR_##name:                                                          \
        return #name;
        WEIR_ERR_MAP(WEIR__ERR_NAME)
#undef WEIR__ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

const char *weir_strerror(int err)
{
    switch (err) {
    case WEIR_OK:
        return "success";
#define WEIR__ERR_MSG(name, msg)                                               \
    case WEIR_##name:                                                          \
        return msg;
        WEIR_ERR_MAP(WEIR__ERR_MSG)
#undef WEIR__ERR_MSG
    default:
        return "unknown error";
    }
}
