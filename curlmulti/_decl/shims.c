/* C side of curlmulti._curl: typed shims over libcurl's variadic calls.
 * Compiled by build_ffi.py after <curl/curl.h>; the extern "Python"
 * trampolines named here are declared in callbacks.h and defined by cffi. */

#include <stdio.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <errno.h>
#include <time.h>

#if LIBCURL_VERSION_NUM < 0x074900
#error "curlmulti needs libcurl 7.73.0 or newer"
#endif

/* The callbacks libcurl gained after 7.73, each present in this build only
 * if the headers have it (CM_HAS_* is 0 otherwise, and setopt of the
 * option is CURLE_UNKNOWN_OPTION). */
#define CM_HAS_HSTS (LIBCURL_VERSION_NUM >= 0x074a00)          /* 7.74.0 */
#define CM_HAS_PREREQ (LIBCURL_VERSION_NUM >= 0x075000)        /* 7.80.0 */
#define CM_HAS_SSH_HOSTKEY (LIBCURL_VERSION_NUM >= 0x075400)   /* 7.84.0 */
/* Multi notifications (curl_multi_notify_enable, CURLMOPT_NOTIFYFUNCTION):
 * 8.17.0.  CM_HAS_NOTIFY is also in the cdef (shims.h): _multi.py defines
 * notify_enable/notify_disable only when it is 1. */
#if defined(CURLMNOTIFY_EASY_DONE) && LIBCURL_VERSION_NUM >= 0x081100
#define CM_HAS_NOTIFY 1
#else
#define CM_HAS_NOTIFY 0
#endif

/* An HSTS entry as the Python trampolines see it: libcurl's
 * struct curl_hstsentry has a bit-field, copied to and from this. */
struct cm_hsts {
    char *name;
    size_t namelen;
    int include_subdomains;
    char expire[18];
};

static size_t cm_write_cb(char *, size_t, size_t, void *);
static size_t cm_header_cb(char *, size_t, size_t, void *);
static size_t cm_read_cb(char *, size_t, size_t, void *);
static int cm_xferinfo_cb(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static int cm_progress_cb(void *, double, double, double, double);
static int cm_debug_cb(CURL *, curl_infotype, char *, size_t, void *);
static int cm_seek_cb(void *, curl_off_t, int);
static int cm_ioctl_cb(CURL *, int, void *);
static int cm_sockopt_cb(void *, curl_socket_t, curlsocktype);
static curl_socket_t cm_opensocket_cb(void *, curlsocktype, struct curl_sockaddr *);
static int cm_closesocket_cb(void *, curl_socket_t);
static int cm_ssh_key_cb(const struct curl_khkey *, const struct curl_khkey *, int, void *);
static int cm_ssh_hostkey_cb(void *, int, const char *, size_t);
static int cm_prereq_cb(void *, char *, char *, int, int);
static int cm_trailer_cb(struct curl_slist **, void *);
static int cm_resolver_start_cb(void *, void *, void *);
static int cm_fnmatch_cb(void *, const char *, const char *);
static int cm_hstsread_cb(struct cm_hsts *, void *);
static int cm_hstswrite_cb(struct cm_hsts *, size_t, size_t, void *);
static int cm_socket_cb(CURL *, curl_socket_t, int, void *, void *);
static int cm_timer_cb(CURLM *, long, void *);
static void cm_notify_cb(void *, unsigned int, void *);

#define CM_OPTTYPE_LONG CURLOPTTYPE_LONG
#define CM_OPTTYPE_OBJECTPOINT CURLOPTTYPE_OBJECTPOINT
#define CM_OPTTYPE_FUNCTIONPOINT CURLOPTTYPE_FUNCTIONPOINT
#define CM_OPTTYPE_OFF_T CURLOPTTYPE_OFF_T
#define CM_OPTTYPE_BLOB CURLOPTTYPE_BLOB
#define CM_INFO_STRING CURLINFO_STRING
#define CM_INFO_LONG CURLINFO_LONG
#define CM_INFO_DOUBLE CURLINFO_DOUBLE
#define CM_INFO_SLIST CURLINFO_SLIST
#define CM_INFO_PTR CURLINFO_PTR
#define CM_INFO_SOCKET CURLINFO_SOCKET
#define CM_INFO_OFF_T CURLINFO_OFF_T
#define CM_INFO_TYPEMASK CURLINFO_TYPEMASK
#define CM_EASYTYPE_STRING CURLOT_STRING
#define CM_EASYTYPE_SLIST CURLOT_SLIST
#define CM_EASYTYPE_BLOB CURLOT_BLOB
#define CM_EASYTYPE_CBPTR CURLOT_CBPTR
#define CM_EASYTYPE_OBJECT CURLOT_OBJECT

static CURLcode cm_easy_setopt_long(CURL *h, CURLoption opt, long value)
{
    return curl_easy_setopt(h, opt, value);
}

static CURLcode cm_easy_setopt_off_t(CURL *h, CURLoption opt, curl_off_t value)
{
    return curl_easy_setopt(h, opt, value);
}

static CURLcode cm_easy_setopt_ptr(CURL *h, CURLoption opt, const void *value)
{
    return curl_easy_setopt(h, opt, value);
}

static CURLcode cm_easy_setopt_str(CURL *h, CURLoption opt, const char *value)
{
    return curl_easy_setopt(h, opt, value);
}

static CURLcode cm_easy_setopt_blob(CURL *h, CURLoption opt, struct curl_blob *value)
{
    return curl_easy_setopt(h, opt, value);
}

static CURLcode cm_easy_set_pair(CURL *h, CURLoption fopt, void *func,
                                 CURLoption dopt, void *data)
{
    CURLcode rc = curl_easy_setopt(h, fopt, func);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, dopt, data);
    return rc;
}

/* C wrappers with libcurl's exact prototypes, for the callbacks whose
 * arguments are enums or bit-fields. */
static int cm_ssh_key_c(CURL *easy, const struct curl_khkey *known,
                        const struct curl_khkey *found, enum curl_khmatch match, void *owner)
{
    (void)easy;
    return cm_ssh_key_cb(known, found, (int)match, owner);
}

/* The list starts empty whatever the trampoline does (an exception raised
 * on its entry returns before its first line). */
static int cm_trailer_c(struct curl_slist **list, void *owner)
{
    *list = NULL;
    return cm_trailer_cb(list, owner);
}

static int cm_khkey_keytype(const struct curl_khkey *k)
{
    return (int)k->keytype;
}

#if CM_HAS_HSTS
static CURLSTScode cm_hstsread_c(CURL *easy, struct curl_hstsentry *e, void *owner)
{
    struct cm_hsts h;
    int rc;
    (void)easy;
    memset(&h, 0, sizeof(h));
    h.name = e->name;
    h.namelen = e->namelen;
    rc = cm_hstsread_cb(&h, owner);
    if (rc == CURLSTS_OK) {
        e->namelen = h.namelen;
        e->includeSubDomains = h.include_subdomains ? 1 : 0;
        memcpy(e->expire, h.expire, sizeof(e->expire));
        e->expire[sizeof(e->expire) - 1] = '\0';
    }
    return (CURLSTScode)rc;
}

static CURLSTScode cm_hstswrite_c(CURL *easy, struct curl_hstsentry *e, struct curl_index *i,
                                  void *owner)
{
    struct cm_hsts h;
    (void)easy;
    h.name = e->name;
    h.namelen = e->namelen;
    h.include_subdomains = e->includeSubDomains;
    memcpy(h.expire, e->expire, sizeof(h.expire));
    h.expire[sizeof(h.expire) - 1] = '\0';
    return (CURLSTScode)cm_hstswrite_cb(&h, i->index, i->total, owner);
}
#endif

static CURLcode cm_easy_set_callback(CURL *h, CURLoption opt, void *owner)
{
    int on = owner != NULL;
    switch (opt) {
    /* The data options of these three are FILE * for libcurl's defaults. */
    case CURLOPT_WRITEFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_write_cb : NULL,
                                CURLOPT_WRITEDATA, on ? owner : (void *)stdout);
    case CURLOPT_HEADERFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_header_cb : NULL,
                                CURLOPT_HEADERDATA, on ? owner : NULL);
    case CURLOPT_READFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_read_cb : NULL,
                                CURLOPT_READDATA, on ? owner : (void *)stdin);
    case CURLOPT_XFERINFOFUNCTION:
        if (on) {
            CURLcode rc = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cm_xferinfo_cb);
            return rc ? rc : curl_easy_setopt(h, CURLOPT_XFERINFODATA, owner);
        }
        return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, NULL);
    case CURLOPT_PROGRESSFUNCTION:
        if (on) {
            CURLcode rc = curl_easy_setopt(h, CURLOPT_PROGRESSFUNCTION, cm_progress_cb);
            return rc ? rc : curl_easy_setopt(h, CURLOPT_PROGRESSDATA, owner);
        }
        return curl_easy_setopt(h, CURLOPT_PROGRESSFUNCTION, NULL);
    case CURLOPT_DEBUGFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_debug_cb : NULL,
                                CURLOPT_DEBUGDATA, owner);
    case CURLOPT_SEEKFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_seek_cb : NULL,
                                CURLOPT_SEEKDATA, owner);
    case CURLOPT_IOCTLFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_ioctl_cb : NULL,
                                CURLOPT_IOCTLDATA, owner);
    case CURLOPT_SOCKOPTFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_sockopt_cb : NULL,
                                CURLOPT_SOCKOPTDATA, owner);
    case CURLOPT_OPENSOCKETFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_opensocket_cb : NULL,
                                CURLOPT_OPENSOCKETDATA, owner);
    case CURLOPT_CLOSESOCKETFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_closesocket_cb : NULL,
                                CURLOPT_CLOSESOCKETDATA, owner);
    case CURLOPT_SSH_KEYFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_ssh_key_c : NULL,
                                CURLOPT_SSH_KEYDATA, owner);
    case CURLOPT_TRAILERFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_trailer_c : NULL,
                                CURLOPT_TRAILERDATA, owner);
    case CURLOPT_RESOLVER_START_FUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_resolver_start_cb : NULL,
                                CURLOPT_RESOLVER_START_DATA, owner);
    case CURLOPT_FNMATCH_FUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_fnmatch_cb : NULL,
                                CURLOPT_FNMATCH_DATA, owner);
#if CM_HAS_HSTS
    case CURLOPT_HSTSREADFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_hstsread_c : NULL,
                                CURLOPT_HSTSREADDATA, owner);
    case CURLOPT_HSTSWRITEFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_hstswrite_c : NULL,
                                CURLOPT_HSTSWRITEDATA, owner);
#endif
#if CM_HAS_PREREQ
    case CURLOPT_PREREQFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_prereq_cb : NULL,
                                CURLOPT_PREREQDATA, owner);
#endif
#if CM_HAS_SSH_HOSTKEY
    case CURLOPT_SSH_HOSTKEYFUNCTION:
        return cm_easy_set_pair(h, opt, on ? (void *)cm_ssh_hostkey_cb : NULL,
                                CURLOPT_SSH_HOSTKEYDATA, owner);
#endif
    default:
        return CURLE_UNKNOWN_OPTION;
    }
}

/* Before curl_easy_cleanup of a handle whose Python owner is gone: no
 * trampoline may be called with its userdata any more.  The
 * CLOSESOCKETFUNCTION stays (its userdata is a closer the record holds). */
static void cm_easy_quiet(CURL *h)
{
    static const CURLoption opts[] = {
        CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION, CURLOPT_READFUNCTION,
        CURLOPT_XFERINFOFUNCTION, CURLOPT_PROGRESSFUNCTION, CURLOPT_DEBUGFUNCTION,
        CURLOPT_SEEKFUNCTION, CURLOPT_IOCTLFUNCTION, CURLOPT_SOCKOPTFUNCTION,
        CURLOPT_OPENSOCKETFUNCTION, CURLOPT_SSH_KEYFUNCTION, CURLOPT_TRAILERFUNCTION,
        CURLOPT_RESOLVER_START_FUNCTION, CURLOPT_FNMATCH_FUNCTION,
#if CM_HAS_HSTS
        CURLOPT_HSTSREADFUNCTION, CURLOPT_HSTSWRITEFUNCTION,
#endif
#if CM_HAS_PREREQ
        CURLOPT_PREREQFUNCTION,
#endif
#if CM_HAS_SSH_HOSTKEY
        CURLOPT_SSH_HOSTKEYFUNCTION,
#endif
    };
    size_t i;
    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        cm_easy_set_callback(h, opts[i], NULL);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
}

static CURLcode cm_easy_bind(CURL *h, void *owner)
{
    return curl_easy_setopt(h, CURLOPT_PRIVATE, owner);
}

static CURLcode cm_easy_getinfo_long(CURL *h, CURLINFO info, long *out)
{
    return curl_easy_getinfo(h, info, out);
}

static __thread CURLcode cm_last_getinfo_code;

static long cm_easy_getinfo_long_fast(CURL *h, CURLINFO info)
{
    long value = 0;
    CURLcode rc = curl_easy_getinfo(h, info, &value);
    cm_last_getinfo_code = rc;
    return rc == CURLE_OK ? value : LONG_MIN;
}

static CURLcode cm_getinfo_code(void)
{
    return cm_last_getinfo_code;
}

static CURLcode cm_easy_getinfo_double(CURL *h, CURLINFO info, double *out)
{
    return curl_easy_getinfo(h, info, out);
}

static CURLcode cm_easy_getinfo_string(CURL *h, CURLINFO info, char **out)
{
    return curl_easy_getinfo(h, info, out);
}

static CURLcode cm_easy_getinfo_slist(CURL *h, CURLINFO info, struct curl_slist **out)
{
    return curl_easy_getinfo(h, info, out);
}

static CURLcode cm_easy_getinfo_off_t(CURL *h, CURLINFO info, curl_off_t *out)
{
    return curl_easy_getinfo(h, info, out);
}

static CURLcode cm_easy_getinfo_socket(CURL *h, CURLINFO info, curl_socket_t *out)
{
    return curl_easy_getinfo(h, info, out);
}

static CURLcode cm_easy_getinfo_ptr(CURL *h, CURLINFO info, void **out)
{
    return curl_easy_getinfo(h, info, out);
}

static void *cm_easy_private(CURL *h)
{
    void *p = NULL;
    if (curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&p) != CURLE_OK)
        return NULL;
    return p;
}

static CURLMcode cm_multi_setopt_long(CURLM *m, CURLMoption opt, long value)
{
    return curl_multi_setopt(m, opt, value);
}

static CURLMcode cm_multi_setopt_off_t(CURLM *m, CURLMoption opt, curl_off_t value)
{
    return curl_multi_setopt(m, opt, value);
}

static CURLMcode cm_multi_setopt_ptr(CURLM *m, CURLMoption opt, const void *value)
{
    return curl_multi_setopt(m, opt, value);
}

#if CM_HAS_NOTIFY
/* CURLMOPT_NOTIFYFUNCTION: the easy handle as its CURLINFO_PRIVATE (the
 * Curl's record, or NULL for libcurl's internal handles, which is what
 * CURLMNOTIFY_INFO_READ passes). */
static void cm_notify_c(CURLM *m, unsigned int notification, CURL *easy, void *owner)
{
    void *p = NULL;
    (void)m;
    if (easy != NULL && notification != CURLMNOTIFY_INFO_READ
            && curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&p) != CURLE_OK)
        p = NULL;
    cm_notify_cb(owner, notification, p);
}
#endif

static CURLMcode cm_multi_notify(CURLM *m, unsigned int notification, int enable)
{
#if CM_HAS_NOTIFY
    return enable ? curl_multi_notify_enable(m, notification)
                  : curl_multi_notify_disable(m, notification);
#else
    (void)m; (void)notification; (void)enable;
    return CURLM_UNKNOWN_OPTION;
#endif
}

static CURLMcode cm_multi_set_callback(CURLM *m, CURLMoption opt, void *owner)
{
    int on = owner != NULL;
    CURLMcode rc;
    switch (opt) {
    case CURLMOPT_SOCKETFUNCTION:
        rc = curl_multi_setopt(m, opt, on ? (void *)cm_socket_cb : NULL);
        return rc ? rc : curl_multi_setopt(m, CURLMOPT_SOCKETDATA, owner);
    case CURLMOPT_TIMERFUNCTION:
        rc = curl_multi_setopt(m, opt, on ? (void *)cm_timer_cb : NULL);
        return rc ? rc : curl_multi_setopt(m, CURLMOPT_TIMERDATA, owner);
#if CM_HAS_NOTIFY
    case CURLMOPT_NOTIFYFUNCTION:
        rc = curl_multi_setopt(m, opt, on ? (void *)cm_notify_c : NULL);
        return rc ? rc : curl_multi_setopt(m, CURLMOPT_NOTIFYDATA, owner);
#endif
    default:
        return CURLM_UNKNOWN_OPTION;
    }
}

static CURLcode cm_msg_result(CURLMsg *msg)
{
    return msg->data.result;
}

static int cm_multi_info_drain(CURLM *m, void **owners, int *codes, int cap, int *queued)
{
    int n = 0;
    CURLMsg *msg;
    *queued = 0;
    while (n < cap && (msg = curl_multi_info_read(m, queued)) != NULL) {
        void *p = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p) != CURLE_OK || !p)
            continue;
        owners[n] = p;
        codes[n] = msg->data.result;
        n++;
    }
    queued[1] = n;  /* for a caller that lost the result (a signal raised as it returned) */
    return n;
}

static int cm_multi_select(CURLM *m, int timeout_ms)
{
    int n = 0;
    long left = -1;
    CURLMcode rc = curl_multi_poll(m, NULL, 0, timeout_ms, &n);
    if (rc != CURLM_OK)
        return -(int)rc;
    if (n == 0 && curl_multi_timeout(m, &left) == CURLM_OK && left == 0)
        n = 1;
    return n;
}

static int cm_multi_fdset(CURLM *m, int *out, int cap)
{
    fd_set r, w, e;
    int maxfd = -1, fd, n = 0;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    if (curl_multi_fdset(m, &r, &w, &e, &maxfd) != CURLM_OK)
        return -1;
    for (fd = 0; fd <= maxfd && n < cap; fd++) {
        int kind = (FD_ISSET(fd, &r) ? 1 : 0) | (FD_ISSET(fd, &w) ? 2 : 0)
                 | (FD_ISSET(fd, &e) ? 4 : 0);
        if (kind)
            out[n++] = fd * 4 + kind;
    }
    return n;
}

static const unsigned char *cm_sockaddr_bytes(struct curl_sockaddr *a)
{
    return (const unsigned char *)&a->addr;
}

/* -- CurlShare ------------------------------------------------------------
 * libcurl calls the lock functions of a share from every thread whose
 * transfers use it, with the GIL released: plain mutexes, one per
 * curl_lock_data (a value newer than these headers gets the last one).
 * users counts the easy handles attached through cm_easy_use_share; the
 * CURLSH is cleaned up when the owner has closed it and users is 0, by
 * whichever of the two comes last, so a handle never points at a freed
 * share whatever the order of close() and garbage collection. */

#define CM_LOCK_SLOTS (CURL_LOCK_DATA_LAST + 1)

typedef struct cm_share cm_share;
struct cm_share {
    CURLSH *sh;              /* NULL once cleaned up */
    pthread_mutex_t guard;   /* sh, users, open */
    long users;
    int open;
    pthread_mutex_t locks[CM_LOCK_SLOTS];
};

static void cm_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
    struct cm_share *s = userptr;
    unsigned int i = (unsigned int)data;
    (void)h;
    (void)access;
    pthread_mutex_lock(&s->locks[i < CURL_LOCK_DATA_LAST ? i : CURL_LOCK_DATA_LAST]);
}

static void cm_share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
    struct cm_share *s = userptr;
    unsigned int i = (unsigned int)data;
    (void)h;
    pthread_mutex_unlock(&s->locks[i < CURL_LOCK_DATA_LAST ? i : CURL_LOCK_DATA_LAST]);
}

static void cm_share_destroy_locks(struct cm_share *s, int n)
{
    while (n-- > 0)
        pthread_mutex_destroy(&s->locks[n]);
    pthread_mutex_destroy(&s->guard);
}

static cm_share *cm_share_new(void)
{
    struct cm_share *s = calloc(1, sizeof(*s));
    int i;
    if (s == NULL)
        return NULL;
    if (pthread_mutex_init(&s->guard, NULL) != 0) {
        free(s);
        return NULL;
    }
    for (i = 0; i < CM_LOCK_SLOTS; i++) {
        if (pthread_mutex_init(&s->locks[i], NULL) != 0) {
            cm_share_destroy_locks(s, i);
            free(s);
            return NULL;
        }
    }
    s->sh = curl_share_init();
    if (s->sh == NULL
            || curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, cm_share_lock) != CURLSHE_OK
            || curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, cm_share_unlock) != CURLSHE_OK
            || curl_share_setopt(s->sh, CURLSHOPT_USERDATA, (void *)s) != CURLSHE_OK) {
        if (s->sh != NULL)
            curl_share_cleanup(s->sh);
        cm_share_destroy_locks(s, CM_LOCK_SLOTS);
        free(s);
        return NULL;
    }
    s->open = 1;
    return s;
}

static void cm_share_free(cm_share *s)
{
    /* Normally cleaned up already.  A CURLSH still in use by some handle
     * keeps calling the lock functions: then leak rather than free them. */
    if (s->sh != NULL && curl_share_cleanup(s->sh) != CURLSHE_OK)
        return;
    cm_share_destroy_locks(s, CM_LOCK_SLOTS);
    free(s);
}

static CURLSHcode cm_share_setopt(cm_share *s, int opt, int type)
{
    CURLSHcode rc;
    if (opt != CURLSHOPT_SHARE && opt != CURLSHOPT_UNSHARE)
        return CURLSHE_BAD_OPTION;
    pthread_mutex_lock(&s->guard);
    rc = s->open ? curl_share_setopt(s->sh, (CURLSHoption)opt, type) : CURLSHE_INVALID;
    pthread_mutex_unlock(&s->guard);
    return rc;
}

/* Called with guard held: take the CURLSH if nobody needs it any more. */
static CURLSH *cm_share_take_if_done(struct cm_share *s)
{
    CURLSH *sh = NULL;
    if (!s->open && s->users == 0) {
        sh = s->sh;
        s->sh = NULL;
    }
    return sh;
}

static CURLSHcode cm_share_finish(struct cm_share *s, CURLSH *sh)
{
    CURLSHcode rc;
    if (sh == NULL)
        return CURLSHE_OK;
    rc = curl_share_cleanup(sh);
    if (rc != CURLSHE_OK) {
        /* Still in use after all: cm_share_free tries again (or leaks). */
        pthread_mutex_lock(&s->guard);
        s->sh = sh;
        pthread_mutex_unlock(&s->guard);
    }
    return rc;
}

static CURLSHcode cm_share_close(cm_share *s)
{
    CURLSH *sh;
    pthread_mutex_lock(&s->guard);
    s->open = 0;
    sh = cm_share_take_if_done(s);
    pthread_mutex_unlock(&s->guard);
    return cm_share_finish(s, sh);
}

static void cm_share_leave(cm_share *s)
{
    CURLSH *sh;
    pthread_mutex_lock(&s->guard);
    if (s->users > 0)
        s->users--;
    sh = cm_share_take_if_done(s);
    pthread_mutex_unlock(&s->guard);
    cm_share_finish(s, sh);
}

static CURLcode cm_easy_use_share(CURL *h, cm_share *old, cm_share *s)
{
    CURLcode rc;
    CURLSH *sh = NULL;
    if (s != NULL) {
        pthread_mutex_lock(&s->guard);
        if (s->open) {
            s->users++;
            sh = s->sh;
        }
        pthread_mutex_unlock(&s->guard);
        if (sh == NULL)
            return CURLE_BAD_FUNCTION_ARGUMENT;
    }
    rc = curl_easy_setopt(h, CURLOPT_SHARE, sh);
    if (rc != CURLE_OK) {
        if (s != NULL)
            cm_share_leave(s);
        return rc;
    }
    if (old != NULL)
        cm_share_leave(old);
    return CURLE_OK;
}

/* -- The lock of an easy handle's record ------------------------------------
 * While a Curl is not attached to a CurlMulti its record is guarded by this
 * recursive mutex: Python takes it through cm_easy_lock/cm_easy_unlock (the
 * record's own_lock), and the fast paths below take it in the same C call as
 * their libcurl call, so that the check of the state and the call are one step
 * for other threads with no Python lock call at all.  idle is 1 while the
 * record's state is IDLE and libcurl may be called on h; it is written only
 * under the mutex (from Python: while holding own_lock). */

struct cm_easy {
    CURL *h;                 /* NULL once the handle is closed */
    int idle;
    void *multi;             /* the struct cm_multi it is attached to (multigate.c), else NULL */
    pthread_mutex_t mu;
    void *pyrec;             /* CPython: the record, for cm_c_write (cwrite.c); else NULL */
    int hand;                /* cm_easy_lock's level not yet claimed by Python (cm_easy_reclaim) */
    pthread_t hand_thread;
    char errbuf[CURL_ERROR_SIZE]; /* the handle's CURLOPT_ERRORBUFFER */
};

#define CM_BUSY (-1)
#define CM_SLICE_MS 10  /* a blocked wait for a lock returns to Python this often (< 1000) */

/* e is memory owned by a Python object (ffi.new), freed only when the last
 * reference to it goes, after every finalizer that might still use it (a
 * calloc'ed struct freed by an ffi.gc destructor could go first when a cycle
 * is collected).  The mutex needs no pthread_mutex_destroy on Linux. */
static void cm_easy_init(struct cm_easy *e, CURL *h)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&e->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    e->h = h;
    e->idle = 1;
    e->multi = NULL;
    e->pyrec = NULL;
    e->hand = 0;
    e->errbuf[0] = '\0';
}

/* Python's lock of the record (own_lock).  Waits up to CM_SLICE_MS, then
 * returns 1 (Python calls again, running signal handlers in between).  0
 * once taken: the level is then
 * handed to Python, which claims it by its next unlock, or, if an exception
 * (a pending Ctrl-C) was raised as this returned, by cm_easy_reclaim. */
#if defined(__USE_GNU) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define CM_EASY_CLOCK CLOCK_MONOTONIC
#define cm_easy_timedlock(mu, ts) pthread_mutex_clocklock((mu), CLOCK_MONOTONIC, (ts))
#else
#define CM_EASY_CLOCK CLOCK_REALTIME
#define cm_easy_timedlock(mu, ts) pthread_mutex_timedlock((mu), (ts))
#endif

static int cm_easy_lock(struct cm_easy *e)
{
    struct timespec deadline;
    int rc;
    if (pthread_mutex_trylock(&e->mu) != 0) {
        clock_gettime(CM_EASY_CLOCK, &deadline);
        deadline.tv_nsec += CM_SLICE_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        rc = cm_easy_timedlock(&e->mu, &deadline);
        if (rc == ETIMEDOUT)
            return 1;
        if (rc != 0)
            pthread_mutex_lock(&e->mu);  /* the timed wait failed otherwise: block */
    }
    e->hand = 1;
    e->hand_thread = pthread_self();
    return 0;
}

static void cm_easy_unlock(struct cm_easy *e)
{
    if (e->hand && pthread_equal(e->hand_thread, pthread_self()))
        e->hand = 0;
    pthread_mutex_unlock(&e->mu);
}

/* Only this thread's last cm_easy_lock can be unclaimed: a failed slice
 * means it held no level, and each unlock claims.  A claimed level is
 * released here, in the same call. */
static int cm_easy_reclaim(struct cm_easy *e)
{
    int rc = 0;
    if (pthread_mutex_trylock(&e->mu) != 0)
        return 0;  /* another thread holds it: not ours */
    if (e->hand && pthread_equal(e->hand_thread, pthread_self())) {
        e->hand = 0;
        rc = 1;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc)
        pthread_mutex_unlock(&e->mu);
    return rc;
}

static void cm_easy_set_idle(struct cm_easy *e, int idle)
{
    pthread_mutex_lock(&e->mu);
    e->idle = idle;
    pthread_mutex_unlock(&e->mu);
}

static void cm_easy_retire(struct cm_easy *e)
{
    pthread_mutex_lock(&e->mu);
    e->idle = 0;
    e->h = NULL;
    pthread_mutex_unlock(&e->mu);
}

static int cm_easy_fast_setopt_str(struct cm_easy *e, CURLoption opt, const char *value)
{
    int code = CM_BUSY;
    pthread_mutex_lock(&e->mu);
    if (e->idle)
        code = (int)curl_easy_setopt(e->h, opt, value);
    pthread_mutex_unlock(&e->mu);
    return code;
}

static int cm_easy_fast_setopt_long(struct cm_easy *e, CURLoption opt, long value)
{
    int code = CM_BUSY;
    pthread_mutex_lock(&e->mu);
    if (e->idle)
        code = (int)curl_easy_setopt(e->h, opt, value);
    pthread_mutex_unlock(&e->mu);
    return code;
}

static long cm_easy_fast_getinfo_long(struct cm_easy *e, CURLINFO info)
{
    long value = 0;
    CURLcode rc;
    pthread_mutex_lock(&e->mu);
    if (!e->idle) {
        pthread_mutex_unlock(&e->mu);
        cm_last_getinfo_code = (CURLcode)CM_BUSY;
        return LONG_MIN;
    }
    rc = curl_easy_getinfo(e->h, info, &value);
    pthread_mutex_unlock(&e->mu);
    cm_last_getinfo_code = rc;
    return rc == CURLE_OK ? value : LONG_MIN;
}
