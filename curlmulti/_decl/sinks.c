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
    char *spare;      /* a block handed back by cm_sink_recycle, for reuse */
    size_t spare_cap;
    CURL *easy;       /* the handle writing into it, to read Content-Length */
    int sized;        /* Content-Length looked at since the last take/clear */
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
        free(s->spare);
        free(s);
    }
}

/* Move the body out: returns its block (len and capacity in out[0], out[1])
 * and leaves the sink empty, on the spare block if it has one. */
static char *cm_sink_take(struct cm_sink *s, size_t *out)
{
    char *p = s->data;
    out[0] = s->len;
    out[1] = s->cap;
    s->data = s->spare;
    s->cap = s->spare ? s->spare_cap : 0;
    s->len = 0;
    s->sized = 0;
    s->spare = NULL;
    s->spare_cap = 0;
    return p;
}

/* A block from cm_sink_take comes back: keep it for reuse, or free it. */
static void cm_sink_recycle(struct cm_sink *s, char *p, size_t cap)
{
    if (s->data == NULL) {
        s->data = p;
        s->cap = cap;
    } else if (s->spare == NULL) {
        s->spare = p;
        s->spare_cap = cap;
    } else {
        free(p);
    }
}

static void cm_sink_clear(struct cm_sink *s)
{
    s->len = 0;
    s->err = 0;
    s->sized = 0;
}

/* The handle h no longer writes into s (closed, reset, or given another
 * write callback): forget it. */
static void cm_sink_detach(struct cm_sink *s, CURL *h)
{
    if (s->easy == h)
        s->easy = NULL;
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
    if (!s->sized) {
        /* One allocation for a body of known length. */
        curl_off_t length = -1;
        s->sized = 1;
        if (s->easy && curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                                         &length) == CURLE_OK
            && length > 0 && (unsigned long long)length < (((size_t)-1) >> 2))
            cm_sink_reserve(s, s->len + (size_t)length);
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
    CURLcode rc;
    s->easy = h;
    rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cm_sink_write);
    return rc ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
}
