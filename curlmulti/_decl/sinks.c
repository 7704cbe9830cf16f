/* Sinks: libcurl's write callback implemented in C, appending to a buffer
 * that doubles as it grows (glibc moves large blocks with mremap, so this
 * costs no copying) or writing to a file descriptor, so a large body costs
 * no Python call per chunk.
 *
 * A sink may be written by libcurl in one thread while Python reads, takes
 * or clears it in another: every function that touches its memory holds
 * the sink's mutex (uncontended, a few nanoseconds a chunk). */

#include <errno.h>
#include <pthread.h>
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
    pthread_mutex_t lock;
};

static struct cm_sink *cm_sink_new(int fd)
{
    struct cm_sink *s = calloc(1, sizeof(*s));
    if (s) {
        s->fd = fd;
        pthread_mutex_init(&s->lock, NULL);
    }
    return s;
}

static void cm_sink_free(struct cm_sink *s)
{
    if (s) {
        pthread_mutex_destroy(&s->lock);
        free(s->data);
        free(s->spare);
        free(s);
    }
}

/* Copy up to cap bytes of the body into out; returns its whole length (call
 * again with a larger out if that is more than cap). */
static size_t cm_sink_copy(struct cm_sink *s, char *out, size_t cap)
{
    size_t len;
    pthread_mutex_lock(&s->lock);
    len = s->len;
    if (len && cap)
        memcpy(out, s->data, len < cap ? len : cap);
    pthread_mutex_unlock(&s->lock);
    return len;
}

/* Move the body out: returns its block (len and capacity in out[0], out[1])
 * and leaves the sink empty, on the spare block if it has one. */
static char *cm_sink_take(struct cm_sink *s, size_t *out)
{
    char *p;
    pthread_mutex_lock(&s->lock);
    p = s->data;
    out[0] = s->len;
    out[1] = s->cap;
    s->data = s->spare;
    s->cap = s->spare ? s->spare_cap : 0;
    s->len = 0;
    s->sized = 0;
    s->spare = NULL;
    s->spare_cap = 0;
    pthread_mutex_unlock(&s->lock);
    return p;
}

/* A block from cm_sink_take comes back: keep it for reuse, or free it. */
static void cm_sink_recycle(struct cm_sink *s, char *p, size_t cap)
{
    pthread_mutex_lock(&s->lock);
    if (s->data == NULL) {
        s->data = p;
        s->cap = cap;
    } else if (s->spare == NULL) {
        s->spare = p;
        s->spare_cap = cap;
    } else {
        free(p);
    }
    pthread_mutex_unlock(&s->lock);
}

static void cm_sink_clear(struct cm_sink *s)
{
    pthread_mutex_lock(&s->lock);
    s->len = 0;
    s->err = 0;
    s->sized = 0;
    pthread_mutex_unlock(&s->lock);
}

/* The handle h no longer writes into s (closed, reset, or given another
 * write callback): forget it. */
static void cm_sink_detach(struct cm_sink *s, CURL *h)
{
    pthread_mutex_lock(&s->lock);
    if (s->easy == h)
        s->easy = NULL;
    pthread_mutex_unlock(&s->lock);
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

static size_t cm_sink_append(struct cm_sink *s, char *ptr, size_t n)
{
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

static size_t cm_sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cm_sink *s = userdata;
    size_t done;
    pthread_mutex_lock(&s->lock);
    done = cm_sink_append(s, ptr, size * nmemb);
    pthread_mutex_unlock(&s->lock);
    return done;
}

static CURLcode cm_easy_set_sink(CURL *h, struct cm_sink *s)
{
    CURLcode rc;
    pthread_mutex_lock(&s->lock);
    s->easy = h;
    pthread_mutex_unlock(&s->lock);
    rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cm_sink_write);
    return rc ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
}
