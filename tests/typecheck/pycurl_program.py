"""A pycurl 7.49 program as people write them, run with curlmulti in its
place: ``mypy --strict`` checks it (tox -e types) and
tests/test_docs_snippets.py runs it against a local server.

    python tests/typecheck/pycurl_program.py http://127.0.0.1:PORT
"""

import io
import select
import sys
from typing import Dict, List, Optional

import curlmulti as pycurl


def easy(base: str) -> None:
    buf = io.BytesIO()
    headers: List[bytes] = []
    c = pycurl.Curl()
    c.setopt(pycurl.URL, base + "/get")
    c.setopt(pycurl.WRITEDATA, buf)
    c.setopt(pycurl.HEADERFUNCTION, headers.append)
    c.setopt(pycurl.HTTPHEADER, ["X-Test: 1"])
    c.setopt(pycurl.FOLLOWLOCATION, True)
    c.setopt(pycurl.TIMEOUT, 30)
    c.perform()
    code: int = c.getinfo(pycurl.RESPONSE_CODE)
    total: float = c.getinfo(pycurl.TOTAL_TIME)
    assert code == 200 and total >= 0 and headers and buf.getvalue()
    c.reset()
    c.setopt(pycurl.URL, base + "/status/404")
    body = c.perform_rb()
    assert c.getinfo(pycurl.RESPONSE_CODE) == 404, body
    c.close()


def failure(base: str) -> None:
    c = pycurl.Curl()
    c.setopt(pycurl.URL, "http://127.0.0.1:1/")
    try:
        c.perform()
    except pycurl.error as e:
        errno, message = e.args
        assert errno == pycurl.E_COULDNT_CONNECT, (errno, message)
        assert c.errstr()
    else:
        raise AssertionError("port 1 answered")
    finally:
        c.close()


def socket_driven(base: str, n: int = 5) -> None:
    """The socket_action() interface, with select() standing in for an event loop."""
    multi = pycurl.CurlMulti()
    sockets: Dict[int, int] = {}
    timeout: List[Optional[float]] = [None]

    def on_socket(what: int, sock: int, _multi: object, _data: object) -> None:
        if what == pycurl.POLL_REMOVE:
            sockets.pop(sock, None)
        else:
            sockets[sock] = what

    def on_timer(ms: int) -> None:
        timeout[0] = None if ms < 0 else ms / 1000.0

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    share = pycurl.CurlShare()
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
    bodies = [pycurl.Buffer() for _ in range(n)]
    for i, body in enumerate(bodies):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, "%s/bytes/%d" % (base, 100 + i))
        c.setopt(pycurl.WRITEDATA, body)
        c.setopt(pycurl.SHARE, share)
        multi.add_handle(c)
    running = n
    finished = 0
    while finished < n:
        readers = [s for s, w in sockets.items() if w & pycurl.POLL_IN]
        writers = [s for s, w in sockets.items() if w & pycurl.POLL_OUT]
        wait = 1.0 if timeout[0] is None else min(timeout[0], 1.0)
        r, w, _ = select.select(readers, writers, [], wait)
        if not r and not w:
            _, running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        for s in set(r) | set(w):
            mask = (pycurl.CSELECT_IN if s in r else 0) | (pycurl.CSELECT_OUT if s in w else 0)
            _, running = multi.socket_action(s, mask)
        queued, ok, failed = multi.info_read()
        for c in ok:
            multi.remove_handle(c)
            c.close()
        assert not failed, failed
        finished += len(ok)
    assert running == 0
    assert sorted(len(b) for b in bodies) == [100 + i for i in range(n)]
    multi.close()
    share.close()


def main(argv: List[str]) -> int:
    base = argv[1].rstrip("/")
    info = pycurl.version_info()
    print(pycurl.version, info[1], "https" in info[8])
    easy(base)
    failure(base)
    socket_driven(base)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
