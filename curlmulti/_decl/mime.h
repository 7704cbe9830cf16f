/* The MIME API beyond the calls HTTPPOST needs (easy.h): what CurlMime and
 * CurlMimePart wrap (_mime.py).  curl_mime_data_cb is reached through
 * cm_mime_data_cb (objects.c), which installs the trampolines of
 * callbacks.h with the part's owner as their argument. */

CURLcode curl_mime_encoder(curl_mimepart *part, const char *encoding);
CURLcode curl_mime_headers(curl_mimepart *part, struct curl_slist *headers, int take_ownership);
CURLcode curl_mime_subparts(curl_mimepart *part, curl_mime *subparts);
/* size -1: unknown.  seek: install the seek trampoline too. */
CURLcode cm_mime_data_cb(curl_mimepart *part, curl_off_t size, void *owner, int seek);
