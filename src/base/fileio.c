/* fileio.c -- see fileio.h. */
#include "base/fileio.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read_all(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int rc = WEIR_EIO;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? WEIR_ENOTFOUND : WEIR_EIO;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto cleanup;
    if ((uint64_t)st.st_size > max) {
        rc = WEIR_ETOOBIG;
        goto cleanup;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto cleanup;
        got += (size_t)r;
    }
    *data = buf;
    *len = n;
    buf = NULL;
    rc = WEIR_OK;
cleanup:
    free(buf);
    close(fd);
    return rc;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fileio_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096], dir[4096];
    int fd = -1, dfd = -1, rc = WEIR_EIO;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return WEIR_EINVAL;
    snprintf(dir, sizeof(dir), "%s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        goto cleanup;
    if (write_full(fd, data, len) || fsync(fd))
        goto cleanup;
    if (close(fd)) {
        fd = -1;
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path))
        goto cleanup;
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd))
        goto cleanup;
    rc = WEIR_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc)
        unlink(tmp);
    return rc;
}

int fileio_mkdirs(const char *path)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
        return WEIR_EINVAL;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) && errno != EEXIST)
            return WEIR_EIO;
        *s = '/';
    }
    if (mkdir(p, 0750) && errno != EEXIST)
        return WEIR_EIO;
    return WEIR_OK;
}
