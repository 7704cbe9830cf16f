/* The native event core of a CurlMulti (see curlmulti/_eventcore.py).
 *
 * libcurl's CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION are the C
 * functions below: the sockets libcurl wants watched are kept in an epoll
 * set and the next deadline in the cm_evcore struct, so a socket event, a
 * mask change or a timer change costs no Python call.  The caller waits for
 * the epoll descriptor and the deadline (cm_evcore_timeout) and then makes
 * one call, cm_evcore_run, which serves every ready socket and the expired
 * timer, drains curl_multi_info_read and removes the finished transfers.
 *
 * Linux only (epoll, eventfd); elsewhere cm_evcore_new returns NULL and the
 * Python driver is used. */

#ifdef __linux__
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#define CM_EVCORE_AVAILABLE 1
#else
#define CM_EVCORE_AVAILABLE 0
#endif

#define CM_RUN_SOCKETS 1  /* serve the ready sockets (and an expired deadline) */
#define CM_RUN_TIMER 2    /* run libcurl's timeout action whatever the deadline */
#define CM_EV_BATCH 256

struct cm_evcore {
    CURLM *m;
    int epfd;                /* the epoll set of libcurl's sockets */
    int wakefd;              /* an eventfd in that set: a callback came from elsewhere */
    long timeout_ms;         /* libcurl's last timer request: -1 none, else ms */
    unsigned long timer_gen; /* bumped whenever the deadline changes */
    int in_run;              /* cm_evcore_run is on the stack */
    int ours;                /* the owner is inside another libcurl call of its own */
    int foreign;             /* a callback ran outside both: orphans to look for */
    int err;                 /* errno of the first failed epoll_ctl, else 0 */
    unsigned long socket_calls, timer_calls, actions;
    int nwatch;              /* sockets in the epoll set */
    int has_deadline;
    long long deadline_ns;   /* CLOCK_MONOTONIC */
    unsigned char *masks;    /* fd -> CURL_POLL_IN/OUT being watched */
    int nmasks;
};

#if CM_EVCORE_AVAILABLE

static long long cm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void cm_evcore_set_deadline(struct cm_evcore *c, long ms)
{
    c->timeout_ms = ms < 0 ? -1 : ms;
    c->has_deadline = ms >= 0;
    if (ms >= 0)
        c->deadline_ns = cm_now_ns() + (long long)ms * 1000000LL;
    c->timer_gen++;
}

static void cm_evcore_note_foreign(struct cm_evcore *c)
{
    if (!c->in_run && !c->ours && !c->foreign) {
        uint64_t one = 1;
        ssize_t w;
        c->foreign = 1;
        w = write(c->wakefd, &one, sizeof one);  /* wakes whoever waits on epfd */
        (void)w;
    }
}

static int cm_evcore_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct cm_evcore *c = userp;
    int old, new_ = what == CURL_POLL_REMOVE ? 0 : what;
    struct epoll_event ev;
    (void)easy;
    (void)socketp;
    c->socket_calls++;
    cm_evcore_note_foreign(c);
    if (s < 0)
        return 0;
    if (s >= c->nmasks) {
        int n = c->nmasks ? c->nmasks : 64;
        unsigned char *p;
        if (!new_)
            return 0;  /* never watched */
        while (n <= s)
            n *= 2;
        p = realloc(c->masks, n);
        if (!p) {
            if (!c->err)
                c->err = ENOMEM;
            return 0;  /* libcurl 7.88 does not survive -1 here; the run reports it */
        }
        memset(p + c->nmasks, 0, n - c->nmasks);
        c->masks = p;
        c->nmasks = n;
    }
    old = c->masks[s];
    if (old == new_)
        return 0;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = s;
    ev.events = ((new_ & CURL_POLL_IN) ? EPOLLIN : 0) | ((new_ & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (!new_) {
        /* EBADF/ENOENT: closed already, which took it out of the set */
        if (epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, &ev) != 0 && errno != EBADF && errno != ENOENT
            && !c->err)
            c->err = errno;
        c->masks[s] = 0;
        c->nwatch--;
        return 0;
    }
    if (epoll_ctl(c->epfd, old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0) {
        int e = errno;
        /* a descriptor closed without POLL_REMOVE and its number reused, or
         * one we never saw leave */
        if (e == ENOENT)
            e = epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) ? errno : 0;
        else if (e == EEXIST)
            e = epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) ? errno : 0;
        if (e) {
            if (!c->err)
                c->err = e;
            return 0;
        }
    }
    if (!old)
        c->nwatch++;
    c->masks[s] = (unsigned char)new_;
    return 0;
}

static int cm_evcore_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct cm_evcore *c = userp;
    (void)m;
    c->timer_calls++;
    cm_evcore_note_foreign(c);
    cm_evcore_set_deadline(c, timeout_ms);
    return 0;
}

static struct cm_evcore *cm_evcore_new(CURLM *m)
{
    struct cm_evcore *c = calloc(1, sizeof *c);
    struct epoll_event ev;
    if (!c)
        return NULL;
    c->m = m;
    c->timeout_ms = -1;
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = c->wakefd;
    if (c->epfd < 0 || c->wakefd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev) != 0)
        goto fail;
    if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, cm_evcore_socket_cb) != CURLM_OK
        || curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c) != CURLM_OK
        || curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, cm_evcore_timer_cb) != CURLM_OK
        || curl_multi_setopt(m, CURLMOPT_TIMERDATA, c) != CURLM_OK)
        goto fail;
    return c;
fail:
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, NULL);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, NULL);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->wakefd >= 0)
        close(c->wakefd);
    free(c);
    return NULL;
}

/* The multi is being cleaned up or closed: libcurl no longer points at c
 * (the owner has reset the callbacks).  Frees c's descriptors and memory. */
static void cm_evcore_free(struct cm_evcore *c)
{
    if (!c)
        return;
    close(c->epfd);
    close(c->wakefd);
    free(c->masks);
    free(c);
}

/* Milliseconds until the deadline (rounded up), 0 if it has passed, -1 if
 * there is none. */
static long cm_evcore_timeout(struct cm_evcore *c)
{
    long long left;
    if (!c->has_deadline)
        return -1;
    left = c->deadline_ns - cm_now_ns();
    if (left <= 0)
        return 0;
    return (long)((left + 999999) / 1000000);
}

static CURLMcode cm_evcore_timeout_action(struct cm_evcore *c, int *running)
{
    CURLMcode rc;
    unsigned long gen;
    /* libcurl does not repeat a timeout it already asked for: the deadline
     * is cleared first, and if the action sets no new one while libcurl
     * still has timers, its own figure is taken. */
    c->has_deadline = 0;
    c->timeout_ms = -1;
    gen = ++c->timer_gen;
    rc = curl_multi_socket_action(c->m, CURL_SOCKET_TIMEOUT, 0, running);
    c->actions++;
    if (rc == CURLM_OK && c->timer_gen == gen) {
        long left = -1;
        if (curl_multi_timeout(c->m, &left) == CURLM_OK && left >= 0)
            cm_evcore_set_deadline(c, left > 0 ? left : 1);
    }
    return rc;
}

/* One wake-up.  flags: CM_RUN_SOCKETS serves the ready sockets (and the
 * deadline if it has passed), CM_RUN_TIMER runs the timeout action in any
 * case; 0 only drains.  Up to cap finished transfers are read and removed
 * from the multi: their CURLOPT_PRIVATE in owners[], their result in
 * codes[], the curl_multi_remove_handle result in removed[].
 * out[0]: the first failing CURLMcode, out[1]: running transfers after the
 * last action (-1: no action ran), out[2]: messages left in libcurl's queue,
 * out[3]: 1 if a callback ran outside our calls since the last run,
 * out[4]: errno of a failed epoll call, out[5]: the count, which it returns. */
static int cm_evcore_run(CURLM *m, struct cm_evcore *c, int flags, void **owners, int *codes,
                         int *removed, int cap, int *out)
{
    struct epoll_event events[CM_EV_BATCH];
    CURLMcode rc = CURLM_OK;
    int n = 0, i, ready = 0, running = -1, queued = 0;
    CURLMsg *msg;
    (void)m;
    c->in_run = 1;
    if (flags & CM_RUN_SOCKETS) {
        ready = epoll_wait(c->epfd, events, CM_EV_BATCH, 0);
        if (ready < 0) {
            if (errno != EINTR && !c->err)
                c->err = errno;
            ready = 0;
        }
        for (i = 0; i < ready; i++) {
            int fd = events[i].data.fd, want, mask = 0;
            unsigned int ev = events[i].events;
            CURLMcode r;
            if (fd == c->wakefd) {
                uint64_t v;
                ssize_t got = read(c->wakefd, &v, sizeof v);
                (void)got;
                continue;
            }
            want = fd < c->nmasks ? c->masks[fd] : 0;
            if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (want & CURL_POLL_IN))
                mask |= CURL_CSELECT_IN;
            if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && (want & CURL_POLL_OUT))
                mask |= CURL_CSELECT_OUT;
            if (!mask)
                continue;  /* no longer wanted: an earlier action changed it */
            r = curl_multi_socket_action(c->m, fd, mask, &running);
            c->actions++;
            if (r != CURLM_OK && rc == CURLM_OK)
                rc = r;
        }
        /* A socket action runs libcurl's expired timers too: a timeout
         * action of its own only when no socket was served. */
        if (running < 0 && c->has_deadline && cm_now_ns() >= c->deadline_ns
            && !(flags & CM_RUN_TIMER)) {
            CURLMcode r = cm_evcore_timeout_action(c, &running);
            if (r != CURLM_OK && rc == CURLM_OK)
                rc = r;
        }
    }
    if (flags & CM_RUN_TIMER) {
        CURLMcode r = cm_evcore_timeout_action(c, &running);
        if (r != CURLM_OK && rc == CURLM_OK)
            rc = r;
    }
    while (n < cap && (msg = curl_multi_info_read(c->m, &queued)) != NULL) {
        void *p = NULL;
        CURL *easy;
        if (msg->msg != CURLMSG_DONE)
            continue;
        easy = msg->easy_handle;
        codes[n] = msg->data.result;  /* msg is invalid after the removal */
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&p) != CURLE_OK || !p)
            continue;
        owners[n] = p;
        removed[n] = curl_multi_remove_handle(c->m, easy);
        n++;
    }
    out[0] = rc;
    out[1] = running;
    out[2] = queued;
    out[3] = c->foreign;
    out[4] = c->err;
    out[5] = n;
    c->foreign = 0;
    c->err = 0;
    c->in_run = 0;
    return n;
}

/* Fill fds[] and masks[] with the watched sockets (at most cap); the count. */
static int cm_evcore_watched(struct cm_evcore *c, int *fds, int *masks, int cap)
{
    int fd, n = 0;
    for (fd = 0; fd < c->nmasks && n < cap; fd++) {
        if (c->masks[fd]) {
            fds[n] = fd;
            masks[n] = c->masks[fd];
            n++;
        }
    }
    return n;
}

#else /* no epoll: the Python driver is used */

static struct cm_evcore *cm_evcore_new(CURLM *m) { (void)m; return NULL; }
static void cm_evcore_free(struct cm_evcore *c) { (void)c; }
static long cm_evcore_timeout(struct cm_evcore *c) { (void)c; return -1; }
static int cm_evcore_run(CURLM *m, struct cm_evcore *c, int flags, void **owners, int *codes,
                         int *removed, int cap, int *out)
{
    (void)m; (void)c; (void)flags; (void)owners; (void)codes; (void)removed; (void)cap;
    out[0] = CURLM_INTERNAL_ERROR;
    return 0;
}
static int cm_evcore_watched(struct cm_evcore *c, int *fds, int *masks, int cap)
{
    (void)c; (void)fds; (void)masks; (void)cap;
    return 0;
}

#endif

static const int CM_EVCORE = CM_EVCORE_AVAILABLE;
