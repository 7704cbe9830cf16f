/* The lock and the busy mark of a CurlMulti's record (C in multigate.c): a
 * recursive lock (Python: cm_multi_lock/cm_multi_unlock), the thread inside
 * one of the multi's libcurl calls (depth, activity), the threads waiting for
 * a wait to end (waiters), and the hot calls that check, mark, call libcurl
 * and clear the mark in one C call.  CM_MBUSY: not now, Python takes its
 * slow path.  The fields are written only in C. */
struct cm_multi {
    int depth;
    int activity;
    int waiters;
    unsigned long ident;
    ...;
};
#define CM_MBUSY ...
#define CM_MNOTHERE ...
#define CM_ACT_PERFORM ...
#define CM_ACT_SOCKET_ACTION ...
#define CM_ACT_SOCKET_ALL ...
#define CM_ACT_SELECT ...
#define CM_ACT_POLL ...
#define CM_ACT_WAIT ...
#define CM_ACT_RUN_READY ...
#define CM_ACT_ADD_HANDLE ...
#define CM_ACT_REMOVE_HANDLE ...
#define CM_ACT_CLOSE ...
#define CM_ACT_PAUSE ...
#define CM_HAND_LOCK ...
#define CM_HAND_INFO ...
#define CM_HAND_RUN ...
#define CM_HAND_REMOVE ...
/* g: ffi.new("struct cm_multi *"), which owns the memory. */
void cm_multi_init(struct cm_multi *g, CURLM *m);
/* slice_ms >= 0: 1 if the lock was not free within slice_ms (call again). */
int cm_multi_lock(struct cm_multi *g, int slice_ms);
int cm_multi_unlock(struct cm_multi *g);
void cm_multi_begin(struct cm_multi *g, int activity);
void cm_multi_end(struct cm_multi *g);
/* Under the lock: 0 idle, 1 a callback of this thread's call, -activity
 * refused (another thread's call), 2 waited up to slice_ms: call again. */
int cm_multi_enter(struct cm_multi *g, int is_long, int slice_ms);
int cm_multi_perform(struct cm_multi *g, int *running);
int cm_multi_socket_action(struct cm_multi *g, curl_socket_t s, int ev, int *running);
int cm_multi_socket_all(struct cm_multi *g, int *running);
int cm_multi_select_g(struct cm_multi *g, int timeout_ms);
int cm_multi_poll_g(struct cm_multi *g, int wait, int timeout_ms, int *out);
int cm_multi_run(struct cm_multi *g, struct cm_evcore *c, int flags, void **owners, int *codes,
                 int *removed, int cap, int *out);
/* queued: int[2], the messages left in libcurl's queue and the count. */
int cm_multi_info(struct cm_multi *g, void **owners, int *codes, int cap, int *queued);
int cm_multi_add_begin(struct cm_multi *g, struct cm_easy *e);
int cm_multi_add_abandon(struct cm_multi *g, struct cm_easy *e);
int cm_multi_add_finish(struct cm_multi *g, struct cm_easy *e);
int cm_multi_remove(struct cm_multi *g, struct cm_easy *e);
void cm_easy_detached(struct cm_easy *e, int idle);
CURLM *cm_multi_close(struct cm_multi *g);
/* After an exception raised as a call that hands Python a level of the lock
 * returned: 1 if that call (of kind CM_HAND_*) took that level (released
 * here with release; else undo its work, then unlock), else 0. */
int cm_multi_reclaim(struct cm_multi *g, int release, int kind);
