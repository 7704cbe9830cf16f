/* The native event core (eventcore.c, used by curlmulti/_eventcore.py):
 * libcurl's socket and timer callbacks in C, the sockets in an epoll set. */

struct cm_evcore {
    long timeout_ms;          /* libcurl's last timer request: -1 none */
    unsigned long timer_gen;  /* bumped whenever the deadline changes */
    int epfd;                 /* the descriptor to wait on */
    int ours;                 /* set by the owner around its own libcurl calls */
    int foreign;              /* a callback ran outside the owner's calls since the last run */
    unsigned long socket_calls, timer_calls, actions;
    int nwatch;
    ...;
};
/* 1 where the core exists (Linux), else 0 and cm_evcore_new returns NULL. */
static const int CM_EVCORE;
#define CM_RUN_SOCKETS ...
#define CM_RUN_TIMER ...
/* Install the core as m's socket and timer callbacks; NULL on failure. */
struct cm_evcore *cm_evcore_new(CURLM *m);
/* Free it, once libcurl no longer calls it (callbacks reset or m cleaned up). */
void cm_evcore_free(struct cm_evcore *c);
/* Milliseconds to the deadline (rounded up), 0 if passed, -1 if none. */
long cm_evcore_timeout(struct cm_evcore *c);
/* One wake-up: see eventcore.c. */
int cm_evcore_run(CURLM *m, struct cm_evcore *c, int flags, void **owners, int *codes,
                  int *removed, int cap, int *out);
int cm_evcore_watched(struct cm_evcore *c, int *fds, int *masks, int cap);
