"""Fetch many URLs concurrently with pycurl's CurlMulti and print, per URL,
``status size url`` as each transfer finishes.

    python crawler.py [-c CONCURRENCY] [-t TIMEOUT] [URL ...]

With no URL arguments the URLs are read from stdin, one per line (blank
lines and lines starting with # are skipped).  A transfer that fails prints
status 0 and the bytes it got, and its error goes to stderr; the exit status
is 1 if any failed.

Written against pycurl only, so it runs with pycurl itself and, unchanged,
with curlmulti installed as ``pycurl`` (or ``import curlmulti as pycurl``)."""

import argparse
import collections
import sys

try:
    import pycurl
except ImportError:  # no pycurl: curlmulti is a drop-in replacement
    import curlmulti as pycurl


def discard(chunk):
    return None


def new_handle(timeout):
    c = pycurl.Curl()
    c.setopt(pycurl.FOLLOWLOCATION, 1)
    c.setopt(pycurl.MAXREDIRS, 5)
    c.setopt(pycurl.CONNECTTIMEOUT, min(10, timeout))
    c.setopt(pycurl.TIMEOUT, timeout)
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.USERAGENT, "crawler.py")
    c.setopt(pycurl.WRITEFUNCTION, discard)
    return c


def crawl(urls, concurrency=50, timeout=30, out=sys.stdout, err=sys.stderr):
    """Fetch every URL; returns the number of failed transfers."""
    queue = collections.deque(urls)
    m = pycurl.CurlMulti()
    free = [new_handle(timeout) for _ in range(max(1, min(concurrency, len(queue))))]
    active = 0
    failures = 0
    try:
        while queue or active:
            while queue and free:
                c = free.pop()
                c.url = queue.popleft()
                c.setopt(pycurl.URL, c.url)
                m.add_handle(c)
                active += 1
            while True:
                ret, running = m.perform()
                if ret != pycurl.E_CALL_MULTI_PERFORM:
                    break
            while True:
                queued, ok, failed = m.info_read()
                for c in ok:
                    out.write("%d %d %s\n" % (c.getinfo(pycurl.RESPONSE_CODE),
                                              int(c.getinfo(pycurl.SIZE_DOWNLOAD_T)), c.url))
                for c, errno, errmsg in failed:
                    failures += 1
                    out.write("0 %d %s\n" % (int(c.getinfo(pycurl.SIZE_DOWNLOAD_T)), c.url))
                    err.write("%s: error %d: %s\n" % (c.url, errno, errmsg))
                for c in ok + [f[0] for f in failed]:
                    m.remove_handle(c)
                    free.append(c)
                    active -= 1
                if not queued:
                    break
            if running:
                m.select(1.0)
    finally:
        for c in free:
            c.close()
        m.close()
    out.flush()
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-t", "--timeout", type=int, default=30, help="seconds per transfer")
    parser.add_argument("urls", nargs="*")
    args = parser.parse_args(argv)
    urls = args.urls or [line.strip() for line in sys.stdin
                         if line.strip() and not line.lstrip().startswith("#")]
    return 1 if crawl(urls, args.concurrency, args.timeout) else 0


if __name__ == "__main__":
    sys.exit(main())
