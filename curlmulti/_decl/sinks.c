/* Sinks: libcurl's write callback implemented in C, appending to a buffer
 * that doubles as it grows (glibc moves large blocks with mremap, so this
 * costs no copying) or writing to a file descriptor, so a large body costs
 * no Python call per chunk. */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct cm_sink {
    char *data;
    size_t len;
    size_t cap;
    int fd;
    int err;
};

static struct cm_sink *cm_sink_new(int fd)
{
    struct cm_sink *s = calloc(1, sizeof(*s));
    if (s)
        s->fd = fd;
    return s;
}

static void cm_sink_free(struct cm_sink *s)
{
    if (s) {
        free(s->data);
        free(s);
    }
}

static void cm_sink_clear(struct cm_sink *s)
{
    s->len = 0;
    s->err = 0;
}

static int cm_sink_reserve(struct cm_sink *s, size_t want)
{
    char *p;
    if (want <= s->cap)
        return 0;
    p = realloc(s->data, want);
    if (!p)
        return -1;
    s->data = p;
    s->cap = want;
    return 0;
}

static size_t cm_sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cm_sink *s = userdata;
    size_t n = size * nmemb;
    if (s->fd >= 0) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = write(s->fd, ptr + done, n - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                s->err = errno;
                return 0;
            }
            done += (size_t)w;
        }
        return n;
    }
    if (s->len + n > s->cap) {
        size_t want = s->cap ? s->cap * 2 : 16384;
        while (want < s->len + n)
            want *= 2;
        if (cm_sink_reserve(s, want) != 0) {
            s->err = ENOMEM;
            return 0;
        }
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    return n;
}

static CURLcode cm_easy_set_sink(CURL *h, struct cm_sink *s)
{
    CURLcode rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cm_sink_write);
    return rc ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
}
