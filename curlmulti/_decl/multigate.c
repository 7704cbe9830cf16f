/* -- The lock and the busy mark of a multi's record ---------------------------
 * A CurlMulti's record (_MultiRecord in _multi.py) is guarded by one lock, and
 * records which thread is inside one of its libcurl calls.  Both live here, so
 * that the hot calls (perform, socket_action, select, info_read, add and
 * remove) check the state, mark the multi busy, call libcurl and clear the mark
 * in one C call, with no Python lock call and no Python between the libcurl
 * call and the clearing of the mark (a KeyboardInterrupt raised there on PyPy
 * once left a multi marked busy for ever).
 *
 * The record's lock is recursive: holder and count.  Python takes it through
 * cm_multi_lock/cm_multi_unlock (_MultiLock); the fast paths take it in the
 * same C call as their libcurl call.  The busy mark is owner, depth and
 * activity: a long call (perform, socket_action, a wait, ...) sets it with the
 * lock free or held by the caller, and runs without the lock (releasing one
 * level if the caller held it, taken back at the end); callbacks, which run in
 * owner, see depth > 0 and their own thread.  waiters counts threads waiting
 * for a wait (select, poll, wait) to end: a call from another thread during a
 * wait wakes it (curl_multi_wakeup) and waits on cv with the lock released.
 *
 * mu guards every field and is held only inside these functions, never
 * while libcurl runs; cv is broadcast when the lock is freed, the mark is
 * cleared or waiters drops to 0, if anybody sleeps on it.  Waits that Python
 * may want to interrupt (Ctrl-C) are bounded (slice_ms) and return to
 * Python, which calls again: no state is left half-changed in between. */

#include <errno.h>
#include <time.h>

#define CM_ACT_NONE 0
#define CM_ACT_PERFORM 1
#define CM_ACT_SOCKET_ACTION 2
#define CM_ACT_SOCKET_ALL 3
#define CM_ACT_SELECT 4
#define CM_ACT_POLL 5
#define CM_ACT_WAIT 6
#define CM_ACT_RUN_READY 7
#define CM_ACT_ADD_HANDLE 8
#define CM_ACT_REMOVE_HANDLE 9
#define CM_ACT_CLOSE 10
#define CM_ACT_PAUSE 11
#define CM_ACT_IS_WAIT(a) ((a) == CM_ACT_SELECT || (a) == CM_ACT_POLL || (a) == CM_ACT_WAIT)

#define CM_MBUSY INT_MIN        /* not now: Python takes its slow path */
#define CM_MNOTHERE (INT_MIN + 1) /* remove: the handle is not attached to this multi */

/* Which call handed Python a level of the lock (hand_kind): a handler
 * reclaims only the kind of call it guards, so a level another call handed
 * over (a lock taken just before, whose hand-off no call has ended yet) is
 * never taken for its own. */
#define CM_HAND_LOCK 1
#define CM_HAND_INFO 2
#define CM_HAND_RUN 3
#define CM_HAND_REMOVE 4

struct cm_multi {
    CURLM *m;                /* NULL once the multi is closed */
    int depth;               /* nesting of the multi's calls in owner; 0: idle */
    int activity;            /* CM_ACT_* of the outermost call */
    int waiters;             /* threads waiting for a wait to end */
    int count;               /* the record's lock, held count deep by holder */
    unsigned long ident;     /* owner as a number while depth > 0 (for Python's eyes only) */
    int sleepers;            /* threads blocked on cv */
    struct cm_easy *adding;  /* between cm_multi_add_begin and _finish (or _abandon) */
    int hand_count;          /* a level handed to Python (see cm_multi_reclaim); 0: none */
    int hand_kind;           /* CM_HAND_* of the call that handed it */
    pthread_t hand_thread;
    pthread_t holder;
    pthread_t owner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static unsigned long cm_m_ident(pthread_t t)
{
#ifdef __linux__
    return (unsigned long)t;
#else
    (void)t;
    return 1;
#endif
}

/* g is memory owned by a Python object (ffi.new), freed only when the last
 * reference goes (see cm_easy_init); no destroy is needed on Linux. */
static void cm_multi_init(struct cm_multi *g, CURLM *m)
{
    pthread_condattr_t attr;
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_init(&attr);
#ifdef __linux__
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    pthread_cond_init(&g->cv, &attr);
    pthread_condattr_destroy(&attr);
    g->m = m;
}

/* With mu held. */
static int cm_m_lock_free(struct cm_multi *g, pthread_t self)
{
    return g->count == 0 || pthread_equal(g->holder, self);
}

static void cm_m_wake(struct cm_multi *g)
{
    if (g->sleepers)
        pthread_cond_broadcast(&g->cv);
}

static void cm_m_deadline(struct timespec *ts, int ms)
{
#ifdef __linux__
    clock_gettime(CLOCK_MONOTONIC, ts);
#else
    clock_gettime(CLOCK_REALTIME, ts);
#endif
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Sleep on cv (mu held) until woken, or until deadline (if not NULL):
 * returns 1 once the deadline has passed. */
static int cm_m_sleep(struct cm_multi *g, const struct timespec *deadline)
{
    int rc;
    g->sleepers++;
    if (deadline != NULL)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, deadline);
    else
        rc = pthread_cond_wait(&g->cv, &g->mu);
    g->sleepers--;
    return rc == ETIMEDOUT;
}

/* mu taken.  Any call of this thread into g ends a level's hand-off to it
 * (see cm_multi_reclaim): a hand-off is claimed right after its call or never. */
static void cm_m_mu(struct cm_multi *g, pthread_t self)
{
    pthread_mutex_lock(&g->mu);
    if (g->hand_count && pthread_equal(g->hand_thread, self))
        g->hand_count = 0;
}

/* With mu held, the lock just taken (one more level) for Python, by a call
 * of that kind. */
static void cm_m_hand(struct cm_multi *g, pthread_t self, int kind)
{
    g->hand_thread = self;
    g->hand_count = g->count;
    g->hand_kind = kind;
}

/* The record's lock.  slice_ms >= 0: give up after that long and return 1
 * (Python calls again, seeing signals in between); else wait as long as it
 * takes.  0 once taken. */
static int cm_multi_lock(struct cm_multi *g, int slice_ms)
{
    pthread_t self = pthread_self();
    struct timespec deadline;
    cm_m_mu(g, self);
    if (!cm_m_lock_free(g, self)) {
        if (slice_ms >= 0)
            cm_m_deadline(&deadline, slice_ms);
        while (!cm_m_lock_free(g, self)) {
            if (cm_m_sleep(g, slice_ms >= 0 ? &deadline : NULL)) {
                pthread_mutex_unlock(&g->mu);
                return 1;
            }
        }
    }
    g->holder = self;
    g->count++;
    cm_m_hand(g, self, CM_HAND_LOCK);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

/* -1 if this thread does not hold the lock. */
static int cm_multi_unlock(struct cm_multi *g)
{
    pthread_t self = pthread_self();
    int rc = 0;
    cm_m_mu(g, self);
    if (g->count == 0 || !pthread_equal(g->holder, self))
        rc = -1;
    else if (--g->count == 0)
        cm_m_wake(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* With mu held: set the mark (or nest in it). */
static void cm_m_mark(struct cm_multi *g, pthread_t self, int activity)
{
    if (g->depth++ == 0) {
        g->owner = self;
        g->activity = activity;
        g->ident = cm_m_ident(self);
    }
}

static void cm_m_unmark(struct cm_multi *g)
{
    if (--g->depth == 0) {
        g->activity = CM_ACT_NONE;
        g->ident = 0;
        cm_m_wake(g);
    }
}

/* Python's begin()/end(): the mark, for a call made under the lock. */
static void cm_multi_begin(struct cm_multi *g, int activity)
{
    pthread_t self = pthread_self();
    cm_m_mu(g, self);
    cm_m_mark(g, self, activity);
    pthread_mutex_unlock(&g->mu);
}

static void cm_multi_end(struct cm_multi *g)
{
    cm_m_mu(g, pthread_self());
    cm_m_unmark(g);
    pthread_mutex_unlock(&g->mu);
}

/* Under the lock (held by this thread), before a call: 0 the multi is idle
 * (and, with is_long, no thread is waiting for a wait to end: those go
 * first); 1 this thread is inside one of its calls (a callback); -activity
 * another thread runs that call (not a wait: refused); 2 this thread waited
 * (with the lock released) for up to slice_ms (< 0: no limit) for a wait of
 * another thread, or for the waiters, to end: call again. */
static int cm_multi_enter(struct cm_multi *g, int is_long, int slice_ms)
{
    pthread_t self = pthread_self();
    struct timespec deadline;
    int saved, timed_out = 0;
    cm_m_mu(g, self);
    if (g->depth == 0) {
        if (!is_long || g->waiters == 0 || g->m == NULL) {
            pthread_mutex_unlock(&g->mu);
            return 0;
        }
    } else if (pthread_equal(g->owner, self)) {
        pthread_mutex_unlock(&g->mu);
        return 1;
    } else if (!CM_ACT_IS_WAIT(g->activity)) {
        saved = g->activity;
        pthread_mutex_unlock(&g->mu);
        return -saved;
    }
    if (slice_ms >= 0)
        cm_m_deadline(&deadline, slice_ms);
    /* Release the lock entirely (whatever this thread's depth in it). */
    saved = g->count;
    g->count = 0;
    cm_m_wake(g);
    if (g->depth) {
        /* Another thread's wait: wake it, and wait for it to end. */
        if (g->m != NULL)
            curl_multi_wakeup(g->m);
        g->waiters++;
        while (g->depth && !pthread_equal(g->owner, self) && !timed_out)
            timed_out = cm_m_sleep(g, slice_ms >= 0 ? &deadline : NULL);
        /* Take the lock back before leaving the waiters: the thread of the
         * wait cannot start its next call before this one has run. */
        while (!cm_m_lock_free(g, self))
            cm_m_sleep(g, NULL);
        if (--g->waiters == 0)
            cm_m_wake(g);  /* a long call held back for us may go */
    } else {
        /* Idle, but threads that woke the last wait go first. */
        while (g->waiters && g->depth == 0 && !timed_out)
            timed_out = cm_m_sleep(g, slice_ms >= 0 ? &deadline : NULL);
        while (!cm_m_lock_free(g, self))
            cm_m_sleep(g, NULL);
    }
    g->holder = self;
    g->count = saved;
    pthread_mutex_unlock(&g->mu);
    return 2;
}

/* The start of a long call made without Python: the multi open, the lock
 * free or this thread's, the multi idle with nobody waiting, or this thread
 * already inside one of its calls.  Marks it and releases one level of the
 * lock if this thread held it (*relock).  NULL: not now. */
static CURLM *cm_m_begin(struct cm_multi *g, int activity, int *relock)
{
    pthread_t self = pthread_self();
    CURLM *m;
    cm_m_mu(g, self);
    m = g->m;
    if (m == NULL || (g->count && !pthread_equal(g->holder, self))
        || (g->depth ? !pthread_equal(g->owner, self) : g->waiters != 0)) {
        pthread_mutex_unlock(&g->mu);
        return NULL;
    }
    cm_m_mark(g, self, activity);
    *relock = 0;
    if (g->count) {
        *relock = 1;
        if (--g->count == 0)
            cm_m_wake(g);
    }
    pthread_mutex_unlock(&g->mu);
    return m;
}

/* The end of a long call: the mark cleared and `levels` of the lock taken
 * (back): cm_m_begin's relock, plus one handed to Python if hand (a
 * CM_HAND_* kind; 0: none). */
static void cm_m_end(struct cm_multi *g, int levels, int hand)
{
    pthread_t self = pthread_self();
    cm_m_mu(g, self);
    cm_m_unmark(g);
    if (levels) {
        while (!cm_m_lock_free(g, self))
            cm_m_sleep(g, NULL);
        g->holder = self;
        g->count += levels;
        if (hand)
            cm_m_hand(g, self, hand);
    }
    pthread_mutex_unlock(&g->mu);
}

static int cm_multi_perform(struct cm_multi *g, int *running)
{
    int relock, code;
    CURLM *m = cm_m_begin(g, CM_ACT_PERFORM, &relock);
    if (m == NULL)
        return CM_MBUSY;
    code = (int)curl_multi_perform(m, running);
    cm_m_end(g, relock, 0);
    return code;
}

static int cm_multi_socket_action(struct cm_multi *g, curl_socket_t s, int ev, int *running)
{
    int relock, code;
    CURLM *m = cm_m_begin(g, CM_ACT_SOCKET_ACTION, &relock);
    if (m == NULL)
        return CM_MBUSY;
    code = (int)curl_multi_socket_action(m, s, ev, running);
    cm_m_end(g, relock, 0);
    return code;
}

static int cm_multi_socket_all(struct cm_multi *g, int *running)
{
    int relock, code;
    CURLM *m = cm_m_begin(g, CM_ACT_SOCKET_ALL, &relock);
    if (m == NULL)
        return CM_MBUSY;
    code = (int)curl_multi_socket_all(m, running);
    cm_m_end(g, relock, 0);
    return code;
}

/* CurlMulti.select(): cm_multi_select (shims.c) as a long call. */
static int cm_multi_select_g(struct cm_multi *g, int timeout_ms)
{
    int relock, n;
    CURLM *m = cm_m_begin(g, CM_ACT_SELECT, &relock);
    if (m == NULL)
        return CM_MBUSY;
    n = cm_multi_select(m, timeout_ms);
    cm_m_end(g, relock, 0);
    return n;
}

/* curl_multi_wait (wait != 0) or curl_multi_poll as a long call. */
static int cm_multi_poll_g(struct cm_multi *g, int wait, int timeout_ms, int *out)
{
    int relock, code;
    CURLM *m = cm_m_begin(g, wait ? CM_ACT_WAIT : CM_ACT_POLL, &relock);
    if (m == NULL)
        return CM_MBUSY;
    if (wait)
        code = (int)curl_multi_wait(m, NULL, 0, timeout_ms, out);
    else
        code = (int)curl_multi_poll(m, NULL, 0, timeout_ms, out);
    cm_m_end(g, relock, 0);
    return code;
}

/* run_ready(): cm_evcore_run as a long call; returns with one more level of
 * the lock held than the caller had (Python maps the finished handles under
 * it), handed to Python. */
static int cm_multi_run(struct cm_multi *g, struct cm_evcore *c, int flags, void **owners,
                        int *codes, int *removed, int cap, int *out)
{
    int relock, n;
    CURLM *m = cm_m_begin(g, CM_ACT_RUN_READY, &relock);
    if (m == NULL)
        return CM_MBUSY;
    n = cm_evcore_run(m, c, flags, owners, codes, removed, cap, out);
    cm_m_end(g, relock + 1, CM_HAND_RUN);
    return n;
}

/* info_read(): the lock taken (free, or this thread's) and the multi idle or
 * in a call of this thread, then cm_multi_info_drain (queued[0]: left in the
 * queue, queued[1]: n).  With n > 0 the lock is
 * still held (one level more, handed to Python): Python maps the handles
 * under it. */
static int cm_multi_info(struct cm_multi *g, void **owners, int *codes, int cap, int *queued)
{
    pthread_t self = pthread_self();
    CURLM *m;
    int n;
    cm_m_mu(g, self);
    m = g->m;
    if (m == NULL || !cm_m_lock_free(g, self) || (g->depth && !pthread_equal(g->owner, self))) {
        pthread_mutex_unlock(&g->mu);
        return CM_MBUSY;
    }
    g->holder = self;
    g->count++;
    cm_m_hand(g, self, CM_HAND_INFO);  /* ended by the unlock below if n == 0 */
    pthread_mutex_unlock(&g->mu);
    n = cm_multi_info_drain(m, owners, codes, cap, queued);  /* queued[1] = n */
    if (n == 0)
        cm_multi_unlock(g);
    return n;
}

/* add_handle(), first half: the lock taken, the mark set (or nested in), and
 * e's own mutex taken (the multi's lock first).  Python then checks and
 * attaches the record and calls cm_multi_add_finish, or cm_multi_add_abandon.
 * CM_MBUSY: not now, nothing taken. */
static int cm_multi_add_begin(struct cm_multi *g, struct cm_easy *e)
{
    pthread_t self = pthread_self();
    cm_m_mu(g, self);
    if (g->m == NULL || !cm_m_lock_free(g, self) || (g->depth && !pthread_equal(g->owner, self))) {
        pthread_mutex_unlock(&g->mu);
        return CM_MBUSY;
    }
    g->holder = self;
    g->count++;
    cm_m_mark(g, self, CM_ACT_ADD_HANDLE);
    g->adding = e;
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&e->mu);
    return 0;
}

/* Undo cm_multi_add_begin (e's mutex, the mark, the lock's level) if this
 * thread's add of e is still between the halves: 1; else (already finished
 * or abandoned) 0, nothing done.  Safe to call from any exception handler. */
static int cm_multi_add_abandon(struct cm_multi *g, struct cm_easy *e)
{
    pthread_t self = pthread_self();
    cm_m_mu(g, self);
    if (g->adding != e || g->depth == 0 || !pthread_equal(g->owner, self)) {
        pthread_mutex_unlock(&g->mu);
        return 0;
    }
    g->adding = NULL;
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_unlock(&e->mu);
    cm_m_mu(g, self);
    cm_m_unmark(g);
    if (--g->count == 0)
        cm_m_wake(g);
    pthread_mutex_unlock(&g->mu);
    return 1;
}

/* add_handle(), second half: e no longer idle and attached to g, its mutex
 * released, curl_multi_add_handle, the mark cleared and the lock's level
 * released.  If libcurl refused, e is idle and detached again (Python undoes
 * its side under the lock). */
static int cm_multi_add_finish(struct cm_multi *g, struct cm_easy *e)
{
    pthread_t self = pthread_self();
    CURL *h = e->h;
    CURLM *m = g->m;
    int code;
    e->idle = 0;
    e->multi = g;
    cm_m_mu(g, self);
    g->adding = NULL;
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_unlock(&e->mu);
    code = (int)curl_multi_add_handle(m, h);
    if (code) {
        pthread_mutex_lock(&e->mu);
        e->idle = 1;
        e->multi = NULL;
        pthread_mutex_unlock(&e->mu);
    }
    cm_m_mu(g, self);
    cm_m_unmark(g);
    if (--g->count == 0)
        cm_m_wake(g);
    pthread_mutex_unlock(&g->mu);
    return code;
}

/* remove_handle() with the multi idle: the lock taken (free, or this
 * thread's), e checked to be attached to g, the mark set,
 * curl_multi_remove_handle, e idle and detached, the mark cleared.  Returns
 * the CURLMcode with the lock still held, handed to Python (which unlinks
 * the record under it); CM_MBUSY (the multi is busy, or the lock another thread's) or
 * CM_MNOTHERE (e not attached to g) with nothing held. */
static int cm_multi_remove(struct cm_multi *g, struct cm_easy *e)
{
    pthread_t self = pthread_self();
    CURLM *m;
    CURL *h;
    void *multi;
    int code;
    cm_m_mu(g, self);
    m = g->m;
    if (m == NULL || g->depth || !cm_m_lock_free(g, self)) {
        pthread_mutex_unlock(&g->mu);
        return CM_MBUSY;
    }
    g->holder = self;
    g->count++;
    cm_m_mark(g, self, CM_ACT_REMOVE_HANDLE);
    pthread_mutex_unlock(&g->mu);
    /* e->multi changes only under g's lock, which this thread now holds. */
    pthread_mutex_lock(&e->mu);
    multi = e->multi;
    h = e->h;
    pthread_mutex_unlock(&e->mu);
    if (multi != (void *)g || h == NULL) {
        cm_m_mu(g, self);
        cm_m_unmark(g);
        if (--g->count == 0)
            cm_m_wake(g);
        pthread_mutex_unlock(&g->mu);
        return CM_MNOTHERE;
    }
    code = (int)curl_multi_remove_handle(m, h);
    pthread_mutex_lock(&e->mu);
    e->idle = 1;
    e->multi = NULL;
    pthread_mutex_unlock(&e->mu);
    cm_m_mu(g, self);
    cm_m_unmark(g);
    cm_m_hand(g, self, CM_HAND_REMOVE);
    pthread_mutex_unlock(&g->mu);
    return code;
}

/* e is no longer attached to a multi (Python's unlink, under the multi's
 * lock); idle: the fast paths may use it again. */
static void cm_easy_detached(struct cm_easy *e, int idle)
{
    pthread_mutex_lock(&e->mu);
    e->multi = NULL;
    if (idle)
        e->idle = 1;
    pthread_mutex_unlock(&e->mu);
}

/* teardown: the multi closed for the fast paths; returns the CURLM *. */
static CURLM *cm_multi_close(struct cm_multi *g)
{
    CURLM *m;
    cm_m_mu(g, pthread_self());
    m = g->m;
    g->m = NULL;
    pthread_mutex_unlock(&g->mu);
    return m;
}

/* Python's handler of an exception raised as one of the calls that hand a
 * level of the lock to it returned (cm_multi_lock, cm_multi_info with n > 0,
 * cm_multi_run, cm_multi_remove with a CURLMcode): on CPython and PyPy a
 * pending signal (Ctrl-C) is raised there, and the result is lost.  1 if that
 * call did take the level, 0 if it did not.  With release, the level is
 * released in the same call (no second signal can land in between); else the
 * handler undoes the call's work, then releases it.  Any other call of this
 * thread into g in between ends the hand-off, so only the call just made can
 * be claimed. */
static int cm_multi_reclaim(struct cm_multi *g, int release, int kind)
{
    pthread_t self = pthread_self();
    int rc;
    pthread_mutex_lock(&g->mu);
    rc = g->hand_count && pthread_equal(g->hand_thread, self) && g->count == g->hand_count
         && pthread_equal(g->holder, self) && g->hand_kind == kind;
    if (pthread_equal(g->hand_thread, self))
        g->hand_count = 0;
    if (rc && release && --g->count == 0)
        cm_m_wake(g);
    pthread_mutex_unlock(&g->mu);
    return rc;
}
