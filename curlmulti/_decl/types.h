/* Types shared by every libcurl area.  Integer types are declared with
 * "int..." so the C compiler supplies their real width and signedness. */

typedef int... curl_socket_t;
typedef int... curl_off_t;
typedef int... CURLcode;
typedef int... CURLoption;
typedef int... CURLINFO;
typedef int... CURLMcode;
typedef int... CURLSHcode;
typedef int... CURLUcode;
typedef int... CURLMoption;
typedef int... CURLMSG;
typedef int... CURLversion;
typedef int... curl_infotype;
typedef int... curlsocktype;
typedef int... curl_easytype;

typedef struct Curl_easy CURL;
typedef struct Curl_multi CURLM;
typedef struct curl_mime curl_mime;
typedef struct curl_mimepart curl_mimepart;
/* A CurlShare's C side: the CURLSH and its lock mutexes (shims.c). */
typedef struct cm_share cm_share;

struct curl_slist {
    char *data;
    struct curl_slist *next;
};

struct curl_certinfo {
    int num_of_certs;
    struct curl_slist **certinfo;
};

struct curl_blob {
    void *data;
    size_t len;
    unsigned int flags;
};

struct curl_sockaddr {
    int family;
    int socktype;
    int protocol;
    unsigned int addrlen;
    ...;
};

/* SSH_KEYFUNCTION's keys; keytype is an enum, read by cm_khkey_keytype. */
struct curl_khkey {
    const char *key;
    size_t len;
    ...;
};

/* HSTSREADFUNCTION/HSTSWRITEFUNCTION's entry, copied from libcurl's
 * struct curl_hstsentry (which has a bit-field) by shims.c. */
struct cm_hsts {
    char *name;
    size_t namelen;
    int include_subdomains;
    char expire[18];
};

struct curl_waitfd {
    curl_socket_t fd;
    short events;
    short revents;
};

typedef struct {
    CURLMSG msg;
    CURL *easy_handle;
    ...;
} CURLMsg;

struct curl_easyoption {
    const char *name;
    CURLoption id;
    curl_easytype type;
    unsigned int flags;
};

typedef struct {
    CURLversion age;
    const char *version;
    unsigned int version_num;
    const char *host;
    int features;
    const char *ssl_version;
    long ssl_version_num;
    const char *libz_version;
    const char * const *protocols;
    const char *ares;
    int ares_num;
    const char *libidn;
    ...;
} curl_version_info_data;
