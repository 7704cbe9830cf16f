/* Every C-to-Python callback, all in one place.  Each is installed by the
 * shims in shims.c and implemented in curlmulti/_callbacks.py.  The void *
 * userdata is always the ffi.new_handle() owned by the Curl or CurlMulti
 * object. */

extern "Python" size_t cm_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
extern "Python" size_t cm_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
extern "Python" size_t cm_read_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
extern "Python" int cm_xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                   curl_off_t ultotal, curl_off_t ulnow);
extern "Python" int cm_progress_cb(void *userdata, double dltotal, double dlnow,
                                   double ultotal, double ulnow);
extern "Python" int cm_debug_cb(CURL *handle, curl_infotype type, char *data, size_t size,
                                void *userdata);
extern "Python" int cm_seek_cb(void *userdata, curl_off_t offset, int origin);
extern "Python" int cm_ioctl_cb(CURL *handle, int cmd, void *userdata);
extern "Python" int cm_sockopt_cb(void *userdata, curl_socket_t curlfd, curlsocktype purpose);
extern "Python" curl_socket_t cm_opensocket_cb(void *userdata, curlsocktype purpose,
                                               struct curl_sockaddr *address);
extern "Python" int cm_closesocket_cb(void *userdata, curl_socket_t item);

extern "Python" int cm_socket_cb(CURL *easy, curl_socket_t s, int what, void *userdata,
                                 void *socketp);
extern "Python" int cm_timer_cb(CURLM *multi, long timeout_ms, void *userdata);

/* CurlMimePart.data_cb: the userdata is the ffi.new_handle of the part's
 * _DataSource (_mime.py). */
extern "Python" size_t cm_mime_read_cb(char *buffer, size_t size, size_t nitems, void *arg);
extern "Python" int cm_mime_seek_cb(void *arg, curl_off_t offset, int origin);
extern "Python" void cm_mime_free_cb(void *arg);
