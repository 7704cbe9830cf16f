/* Typed entry points implemented in shims.c: one per argument type of the
 * variadic libcurl calls, plus helpers that keep fd_set and struct
 * sockaddr on the C side. */

CURLcode cm_easy_setopt_long(CURL *h, CURLoption opt, long value);
CURLcode cm_easy_setopt_off_t(CURL *h, CURLoption opt, curl_off_t value);
CURLcode cm_easy_setopt_ptr(CURL *h, CURLoption opt, const void *value);
CURLcode cm_easy_setopt_blob(CURL *h, CURLoption opt, struct curl_blob *value);
/* A string option straight from a Python bytes object (libcurl copies it). */
CURLcode cm_easy_setopt_str(CURL *h, CURLoption opt, const char *value);
/* Install (owner != NULL) or remove curlmulti's trampoline for a *FUNCTION
 * option, together with its *DATA option. */
CURLcode cm_easy_set_callback(CURL *h, CURLoption opt, void *owner);
/* Point CURLOPT_PRIVATE and the data options that only our trampolines read
 * at owner. */
CURLcode cm_easy_bind(CURL *h, void *owner);
/* Remove every trampoline but CLOSESOCKETFUNCTION (before a cleanup from a
 * finalizer, when the userdata is no longer valid). */
void cm_easy_quiet(CURL *h);

CURLcode cm_easy_getinfo_long(CURL *h, CURLINFO info, long *out);
/* A long info as the return value, no out-parameter to allocate: on failure
 * it returns LONG_MIN and cm_getinfo_code() (per thread) says why. */
long cm_easy_getinfo_long_fast(CURL *h, CURLINFO info);
CURLcode cm_getinfo_code(void);
CURLcode cm_easy_getinfo_double(CURL *h, CURLINFO info, double *out);
CURLcode cm_easy_getinfo_string(CURL *h, CURLINFO info, char **out);
CURLcode cm_easy_getinfo_slist(CURL *h, CURLINFO info, struct curl_slist **out);
CURLcode cm_easy_getinfo_off_t(CURL *h, CURLINFO info, curl_off_t *out);
CURLcode cm_easy_getinfo_socket(CURL *h, CURLINFO info, curl_socket_t *out);
CURLcode cm_easy_getinfo_ptr(CURL *h, CURLINFO info, void **out);
void *cm_easy_private(CURL *h);

CURLMcode cm_multi_setopt_long(CURLM *m, CURLMoption opt, long value);
CURLMcode cm_multi_setopt_off_t(CURLM *m, CURLMoption opt, curl_off_t value);
CURLMcode cm_multi_setopt_ptr(CURLM *m, CURLMoption opt, const void *value);
CURLMcode cm_multi_set_callback(CURLM *m, CURLMoption opt, void *owner);
/* Multi notifications: CM_HAS_NOTIFY is 1 when built against a libcurl
 * with curl_multi_notify_enable/disable (8.17+), whose calls cm_multi_notify
 * makes (enable != 0: enable); else it returns CURLM_UNKNOWN_OPTION and
 * cm_multi_set_callback does not know CURLMOPT_NOTIFYFUNCTION. */
static const int CM_HAS_NOTIFY;
CURLMcode cm_multi_notify(CURLM *m, unsigned int notification, int enable);
CURLcode cm_msg_result(CURLMsg *msg);
/* Drain curl_multi_info_read: the PRIVATE pointer and result of up to cap
 * finished transfers into owners[] and codes[]; queued: int[2], what is
 * left in libcurl's queue and the count.  Returns the count. */
int cm_multi_info_drain(CURLM *m, void **owners, int *codes, int cap, int *queued);

/* CurlMulti.select(): curl_multi_poll for up to timeout_ms, then 1 if no
 * socket was ready but libcurl's timer has expired.  Returns the count, or
 * minus the CURLMcode. */
int cm_multi_select(CURLM *m, int timeout_ms);

/* curl_multi_fdset as a list: writes fd * 4 + kind bits (1 read, 2 write,
 * 4 except) into out, at most cap entries; returns the count or -1. */
int cm_multi_fdset(CURLM *m, int *out, int cap);

/* SSH_KEYFUNCTION: the keytype (enum curl_khtype) of a key. */
int cm_khkey_keytype(const struct curl_khkey *k);

/* The address bytes of a curl_sockaddr (a struct sockaddr_*). */
const unsigned char *cm_sockaddr_bytes(struct curl_sockaddr *a);

/* CurlShare: a cm_share is the CURLSH plus one mutex per curl_lock_data,
 * installed as its LOCKFUNC/UNLOCKFUNC (no Python call per lock).  Its
 * memory is freed by cm_share_free (the cdata's ffi.gc destructor); the
 * CURLSH itself once cm_share_close has been called and every easy handle
 * that cm_easy_use_share attached has let go of it. */
cm_share *cm_share_new(void);
void cm_share_free(cm_share *s);
/* CURLSHOPT_SHARE/UNSHARE only; any other option is CURLSHE_BAD_OPTION. */
/* opt is an int: any Python int that fits is answered by the shim. */
CURLSHcode cm_share_setopt(cm_share *s, int opt, int type);
/* The owner lets go: the CURLSH is cleaned up now if no handle uses it. */
CURLSHcode cm_share_close(cm_share *s);
/* CURLOPT_SHARE: h stops using old (NULL: none) and uses s (NULL: none).
 * CURLE_BAD_FUNCTION_ARGUMENT if s was closed meanwhile. */
CURLcode cm_easy_use_share(CURL *h, cm_share *old, cm_share *s);
/* A handle that used s was cleaned up (curl_easy_cleanup). */
void cm_share_leave(cm_share *s);

/* Shape of the option and info numbers (CURLOPTTYPE_*, CURLINFO_*). */
static const long CM_OPTTYPE_LONG;
static const long CM_OPTTYPE_OBJECTPOINT;
static const long CM_OPTTYPE_FUNCTIONPOINT;
static const long CM_OPTTYPE_OFF_T;
static const long CM_OPTTYPE_BLOB;
static const long CM_INFO_STRING;
static const long CM_INFO_LONG;
static const long CM_INFO_DOUBLE;
static const long CM_INFO_SLIST;
static const long CM_INFO_PTR;
static const long CM_INFO_SOCKET;
static const long CM_INFO_OFF_T;
static const long CM_INFO_TYPEMASK;
static const long CM_EASYTYPE_STRING;
static const long CM_EASYTYPE_SLIST;
static const long CM_EASYTYPE_BLOB;
static const long CM_EASYTYPE_CBPTR;
static const long CM_EASYTYPE_OBJECT;
/* Used internally; not all are pycurl names. */
#define CURLVERSION_NOW ...

/* Sinks: a body written by C, with no Python call per chunk (sinks.c). */
struct cm_sink {
    char *data;
    size_t len;
    size_t cap;
    int fd;          /* >= 0: write(2) to this descriptor instead of memory */
    int err;         /* errno of the failure that stopped the sink, else 0 */
    ...;
};
struct cm_sink *cm_sink_new(int fd);
size_t cm_sink_copy(struct cm_sink *s, char *out, size_t cap);
void cm_sink_free(struct cm_sink *s);
void cm_sink_clear(struct cm_sink *s);
char *cm_sink_take(struct cm_sink *s, size_t *out);
void cm_sink_recycle(struct cm_sink *s, char *p, size_t cap);
void cm_sink_detach(struct cm_sink *s, CURL *h);
/* Install the sink as h's WRITEFUNCTION/WRITEDATA. */
CURLcode cm_easy_set_sink(CURL *h, struct cm_sink *s);
/* libcurl's write callback of a sink; also appends from Python. */
size_t cm_sink_write(char *ptr, size_t size, size_t nmemb, void *userdata);

/* The lock of an easy handle's record while it is not attached (a recursive
 * mutex) and the fast paths that check idle and call libcurl under it in one
 * C call.  idle is written only under the mutex.  Fast paths return CM_BUSY
 * (getinfo: LONG_MIN with cm_getinfo_code() == CM_BUSY) when the handle is not
 * idle: Python then takes its slow path. */
struct cm_easy {
    int idle;
    char errbuf[...];        /* CURLOPT_ERRORBUFFER (CURL_ERROR_SIZE) */
    ...;
};
#define CM_BUSY ...
#define CM_SLICE_MS ...
/* e: ffi.new("struct cm_easy *"), which owns the memory. */
void cm_easy_init(struct cm_easy *e, CURL *h);
/* 1 if the mutex was not free within CM_SLICE_MS (call again), 0 once taken. */
int cm_easy_lock(struct cm_easy *e);
void cm_easy_unlock(struct cm_easy *e);
/* After an exception raised as cm_easy_lock returned: 1 if it took the
 * mutex (now released), else 0. */
int cm_easy_reclaim(struct cm_easy *e);
void cm_easy_set_idle(struct cm_easy *e, int idle);
/* idle = 0 and h = NULL: no fast path touches the handle from now on. */
void cm_easy_retire(struct cm_easy *e);
int cm_easy_fast_setopt_str(struct cm_easy *e, CURLoption opt, const char *value);
int cm_easy_fast_setopt_long(struct cm_easy *e, CURLoption opt, long value);
long cm_easy_fast_getinfo_long(struct cm_easy *e, CURLINFO info);
/* The body and header trampolines in C (cwrite.c; CPython only).
 * cm_cwrite_init: the two Python functions they hand the uncommon cases to
 * (borrowed: module globals), -1 where they are not built.
 * cm_easy_set_cwrite: WRITEFUNCTION or HEADERFUNCTION through them for the
 * record rec (borrowed), CURLE_NOT_BUILT_IN on PyPy. */
int cm_cwrite_init(void *full, void *outcome);
CURLcode cm_easy_set_cwrite(CURL *h, CURLoption opt, struct cm_easy *e, void *rec);
