/* WebSockets (curl/websockets.h, libcurl 7.86+), through shims (objects.c)
 * that exist whatever the headers: CM_HAS_WS is 1 when they were compiled
 * against libcurl's WebSocket calls, else they return CURLE_NOT_BUILT_IN.
 * _ws.py also asks the loaded libcurl whether it speaks "ws" and removes
 * the ws_* methods when it does not. */

static const int CM_HAS_WS;

/* A copy of libcurl's struct curl_ws_frame, the same on every version. */
struct cm_ws_frame {
    int age;
    int flags;
    long long offset;
    long long bytesleft;
    size_t len;
};

CURLcode cm_ws_recv(CURL *h, void *buffer, size_t buflen, size_t *nread, struct cm_ws_frame *meta);
CURLcode cm_ws_send(CURL *h, const void *buffer, size_t buflen, size_t *sent, curl_off_t fragsize,
                    unsigned int flags);
/* 1 and *meta filled when libcurl has a current frame, else 0. */
int cm_ws_meta(CURL *h, struct cm_ws_frame *meta);
