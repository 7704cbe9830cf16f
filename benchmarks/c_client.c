/* The C client: libcurl's multi API with no language binding in the way,
 * the physical limit for any binding of the same libcurl.
 *
 *   gcc -O2 -o c_client c_client.c -lcurl
 *   ./c_client --url URL --requests N --concurrency C [--mode rate|hold]
 *              [--seconds S] [--min-requests M] [--warmup W] [--warmup-url URL]
 *              [--max-seconds T]
 *
 * Same protocol as bench_common.py: warm up, then one timed batch, then one
 * JSON line on stdout.  One easy handle per slot, reused (so connections
 * are kept alive); every body is appended to that handle's growing memory
 * buffer (emptied, not freed, between transfers) and every status checked.
 * The loop is perform / info_read / curl_multi_poll. */

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct slot {
    CURL *easy;
    char *data;
    size_t len, cap;
};

static const char *opt_url, *opt_warm_url, *opt_mode = "rate";
static long opt_requests, opt_conc, opt_min_requests;
static double opt_seconds = 2.0, opt_warmup = 1.0, opt_max_seconds = 300.0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct slot *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n)
            cap *= 2;
        char *p = realloc(s->data, cap);
        if (!p)
            return 0; /* libcurl fails the transfer with CURLE_WRITE_ERROR */
        s->data = p;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    return n;
}

static CURLM *multi;
static struct slot **slots; /* pointers: libcurl holds each slot's address */
static long nslots;

static void ensure_slots(long conc)
{
    if (conc <= nslots)
        return;
    slots = realloc(slots, conc * sizeof *slots);
    if (!slots) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (long i = nslots; i < conc; i++) {
        struct slot *s = calloc(1, sizeof *s);
        if (!s) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        slots[i] = s;
        s->easy = curl_easy_init();
        curl_easy_setopt(s->easy, CURLOPT_PROXY, "");
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    }
    nslots = conc;
}

/* n requests, at most conc at a time; returns 0, or -1 past the deadline. */
static int batch(const char *url, long n, long conc, long *ok, long *errors, long long *nbytes)
{
    long started = 0, done = 0, nfree = 0;
    struct slot **freelist = malloc((conc ? conc : 1) * sizeof *freelist);
    double t0 = now();
    ensure_slots(conc);
    for (long i = 0; i < conc; i++)
        freelist[nfree++] = slots[i];
    *ok = *errors = 0;
    *nbytes = 0;
    while (done < n) {
        while (started < n && nfree) {
            struct slot *s = freelist[--nfree];
            s->len = 0;
            curl_easy_setopt(s->easy, CURLOPT_URL, url);
            curl_multi_add_handle(multi, s->easy);
            started++;
        }
        int running = 0;
        curl_multi_perform(multi, &running);
        long finished = 0;
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            CURLcode rc = msg->data.result;
            struct slot *s;
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_multi_remove_handle(multi, e);
            if (rc == CURLE_OK && code == 200) {
                (*ok)++;
                *nbytes += s->len;
            } else {
                (*errors)++;
            }
            freelist[nfree++] = s;
            finished++;
        }
        done += finished;
        if (finished && started < n)
            continue;
        if (done < n) {
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
            if (now() - t0 > opt_max_seconds) {
                free(freelist);
                return -1;
            }
        }
    }
    free(freelist);
    return 0;
}

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static void fail(const char *why)
{
    printf("{\"client\": \"c-libcurl\", \"error\": \"%s\"}\n", why);
    exit(1);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--url")) opt_url = v;
        else if (!strcmp(k, "--warmup-url")) opt_warm_url = v;
        else if (!strcmp(k, "--mode")) opt_mode = v;
        else if (!strcmp(k, "--requests")) opt_requests = atol(v);
        else if (!strcmp(k, "--concurrency")) opt_conc = atol(v);
        else if (!strcmp(k, "--min-requests")) opt_min_requests = atol(v);
        else if (!strcmp(k, "--seconds")) opt_seconds = atof(v);
        else if (!strcmp(k, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(k, "--max-seconds")) opt_max_seconds = atof(v);
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (!opt_url || opt_requests <= 0 || opt_conc <= 0) {
        fprintf(stderr, "usage: %s --url URL --requests N --concurrency C ...\n", argv[0]);
        return 2;
    }
    int hold = !strcmp(opt_mode, "hold");
    const char *warm_url = opt_warm_url ? opt_warm_url : opt_url;
    long warm_conc = hold ? (opt_conc < 100 ? opt_conc : 100) : opt_conc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();

    long ok, errors, warm_reqs = 0;
    long long nbytes;
    long wn = hold ? warm_conc * 2 : (opt_conc < opt_requests ? opt_conc : opt_requests);
    double rate = 0, t_start = now(), t_end = t_start + opt_warmup;
    for (int i = 0; i < 10000; i++) {
        double t0 = now();
        if (batch(warm_url, wn, warm_conc, &ok, &errors, &nbytes) < 0)
            fail("warm-up exceeded the deadline");
        double dt = now() - t0;
        warm_reqs += wn;
        if (errors)
            fail("warm-up requests failed");
        rate = dt > 0 ? wn / dt : 1e9;
        if (now() >= t_end)
            break;
        long next = (long)(rate * 0.25) + 1;
        wn = next < warm_conc ? warm_conc : (next > 1000000 ? 1000000 : next);
    }
    double warm_seconds = now() - t_start;

    long n;
    if (hold) {
        n = opt_requests;
    } else {
        n = (long)(rate * opt_seconds);
        if (n < opt_min_requests) n = opt_min_requests;
        if (n < opt_conc) n = opt_conc;
        if (n > opt_requests) n = opt_requests;
    }
    long baseline = rss_kib();
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now();
    if (batch(opt_url, n, opt_conc, &ok, &errors, &nbytes) < 0)
        fail("timed batch exceeded the deadline");
    double wall = now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    double user = tv(r1.ru_utime) - tv(r0.ru_utime), sys = tv(r1.ru_stime) - tv(r0.ru_stime);
    printf("{\"client\": \"c-libcurl\", \"interpreter\": \"C\", \"python\": \"\", "
           "\"versions\": {\"libcurl\": \"%s\"}, \"mode\": \"%s\", \"concurrency\": %ld, "
           "\"warmup_seconds\": %.3f, \"warmup_requests\": %ld, \"warmup_rate\": %.1f, "
           "\"baseline_rss_kib\": %ld, \"requests\": %ld, \"ok\": %ld, \"errors\": %ld, "
           "\"wall_s\": %.6f, \"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"cpu_s\": %.6f, "
           "\"bytes\": %lld, \"peak_rss_kib\": %ld, \"rss_after_kib\": %ld}\n",
           curl_version_info(CURLVERSION_NOW)->version, opt_mode, opt_conc, warm_seconds, warm_reqs,
           rate, baseline, n, ok, errors, wall, user, sys, user + sys, nbytes, r1.ru_maxrss,
           rss_kib());
    for (long i = 0; i < nslots; i++) {
        curl_multi_remove_handle(multi, slots[i]->easy);
        curl_easy_cleanup(slots[i]->easy);
        free(slots[i]->data);
        free(slots[i]);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
