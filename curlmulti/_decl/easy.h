/* Global and easy-handle functions (curl/curl.h, curl/easy.h, curl/options.h).
 * curl_easy_setopt and curl_easy_getinfo are variadic: they are reached
 * through the typed shims in shims.h. */

CURLcode curl_global_init(long flags);
void curl_global_cleanup(void);
char *curl_version(void);
curl_version_info_data *curl_version_info(CURLversion);
const char *curl_easy_strerror(CURLcode);
const char *curl_share_strerror(CURLSHcode);
const char *curl_url_strerror(CURLUcode);
void curl_free(void *);

CURL *curl_easy_init(void);
void curl_easy_cleanup(CURL *curl);
CURLcode curl_easy_perform(CURL *curl);
CURL *curl_easy_duphandle(CURL *curl);
void curl_easy_reset(CURL *curl);
CURLcode curl_easy_pause(CURL *handle, int bitmask);
/* CONNECT_ONLY transfers: the connection's own bytes. */
CURLcode curl_easy_recv(CURL *curl, void *buffer, size_t buflen, size_t *n);
CURLcode curl_easy_send(CURL *curl, const void *buffer, size_t buflen, size_t *n);

/* MIME forms: what setopt(HTTPPOST, [...]) builds (as CURLOPT_MIMEPOST). */
curl_mime *curl_mime_init(CURL *easy);
void curl_mime_free(curl_mime *mime);
curl_mimepart *curl_mime_addpart(curl_mime *mime);
CURLcode curl_mime_name(curl_mimepart *part, const char *name);
CURLcode curl_mime_filename(curl_mimepart *part, const char *filename);
CURLcode curl_mime_type(curl_mimepart *part, const char *mimetype);
CURLcode curl_mime_data(curl_mimepart *part, const char *data, size_t datasize);
CURLcode curl_mime_filedata(curl_mimepart *part, const char *filename);

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *data);
void curl_slist_free_all(struct curl_slist *list);

const struct curl_easyoption *curl_easy_option_by_id(CURLoption id);
