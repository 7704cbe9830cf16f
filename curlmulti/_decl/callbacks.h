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

/* Through C wrappers in shims.c (libcurl passes an enum, a bit-field, or
 * a list to clear first). */
extern "Python" int cm_ssh_key_cb(const struct curl_khkey *known, const struct curl_khkey *found,
                                  int match, void *userdata);
extern "Python" int cm_hstsread_cb(struct cm_hsts *entry, void *userdata);
extern "Python" int cm_hstswrite_cb(struct cm_hsts *entry, size_t index, size_t total,
                                    void *userdata);
extern "Python" int cm_trailer_cb(struct curl_slist **list, void *userdata);
/* Installed as they are (each only if the libcurl built against has it). */
extern "Python" int cm_ssh_hostkey_cb(void *userdata, int keytype, const char *key, size_t keylen);
extern "Python" int cm_prereq_cb(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                                 int conn_primary_port, int conn_local_port);
extern "Python" int cm_resolver_start_cb(void *resolver_state, void *reserved, void *userdata);
extern "Python" int cm_fnmatch_cb(void *userdata, const char *pattern, const char *string);

extern "Python" int cm_socket_cb(CURL *easy, curl_socket_t s, int what, void *userdata,
                                 void *socketp);
extern "Python" int cm_timer_cb(CURLM *multi, long timeout_ms, void *userdata);
/* CURLMOPT_NOTIFYFUNCTION (libcurl 8.17+), through cm_notify_c in shims.c:
 * easy_owner is the easy handle's CURLINFO_PRIVATE, or NULL. */
extern "Python" void cm_notify_cb(void *userdata, unsigned int notification, void *easy_owner);

/* CurlMimePart.data_cb: the userdata is the ffi.new_handle of the part's
 * _DataSource (_mime.py). */
extern "Python" size_t cm_mime_read_cb(char *buffer, size_t size, size_t nitems, void *arg);
extern "Python" int cm_mime_seek_cb(void *arg, curl_off_t offset, int origin);
extern "Python" void cm_mime_free_cb(void *arg);
