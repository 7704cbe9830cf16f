/* C side of CurlMime and the WebSocket calls (mime.h, ws.h).  Compiled by
 * build_ffi.py after shims.c. */

/* ws.h declares the same fields (cffi checks them). */
struct cm_ws_frame {
    int age;
    int flags;
    long long offset;
    long long bytesleft;
    size_t len;
};

static size_t cm_mime_read_cb(char *, size_t, size_t, void *);
static int cm_mime_seek_cb(void *, curl_off_t, int);
static void cm_mime_free_cb(void *);

static CURLcode cm_mime_data_cb(curl_mimepart *part, curl_off_t size, void *owner, int seek)
{
    return curl_mime_data_cb(part, size, cm_mime_read_cb, seek ? cm_mime_seek_cb : NULL,
                             cm_mime_free_cb, owner);
}

/* WebSockets: the calls exist from libcurl 7.86 (CURLWS_TEXT is defined by
 * the same header).  8.x made the frame pointers const: the copies below
 * read them the same way on both. */
#if defined(CURLWS_TEXT) && LIBCURL_VERSION_NUM >= 0x075600
#define CM_HAS_WS 1

static void cm_ws_copy(const struct curl_ws_frame *f, struct cm_ws_frame *out)
{
    out->age = f->age;
    out->flags = f->flags;
    out->offset = (long long)f->offset;
    out->bytesleft = (long long)f->bytesleft;
    out->len = f->len;
}

static CURLcode cm_ws_recv(CURL *h, void *buffer, size_t buflen, size_t *nread,
                           struct cm_ws_frame *meta)
{
    const struct curl_ws_frame *f = NULL;
    CURLcode rc = curl_ws_recv(h, buffer, buflen, nread, (void *)&f);
    memset(meta, 0, sizeof(*meta));
    meta->age = -1;
    if (f != NULL)
        cm_ws_copy(f, meta);
    return rc;
}

static CURLcode cm_ws_send(CURL *h, const void *buffer, size_t buflen, size_t *sent,
                           curl_off_t fragsize, unsigned int flags)
{
    return curl_ws_send(h, buffer, buflen, sent, fragsize, flags);
}

static int cm_ws_meta(CURL *h, struct cm_ws_frame *meta)
{
    const struct curl_ws_frame *f = curl_ws_meta(h);
    if (f == NULL)
        return 0;
    cm_ws_copy(f, meta);
    return 1;
}
#else
#define CM_HAS_WS 0

static CURLcode cm_ws_recv(CURL *h, void *buffer, size_t buflen, size_t *nread,
                           struct cm_ws_frame *meta)
{
    (void)h; (void)buffer; (void)buflen;
    *nread = 0;
    memset(meta, 0, sizeof(*meta));
    meta->age = -1;
    return CURLE_NOT_BUILT_IN;
}

static CURLcode cm_ws_send(CURL *h, const void *buffer, size_t buflen, size_t *sent,
                           curl_off_t fragsize, unsigned int flags)
{
    (void)h; (void)buffer; (void)buflen; (void)fragsize; (void)flags;
    *sent = 0;
    return CURLE_NOT_BUILT_IN;
}

static int cm_ws_meta(CURL *h, struct cm_ws_frame *meta)
{
    (void)h; (void)meta;
    return 0;
}
#endif
