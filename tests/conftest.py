"""Shared fixtures: local servers on 127.0.0.1 (see servers.py).

Session-scoped:  ``httpbin`` (the httpbin app under waitress, keep-alive) and
``fast_server`` (asyncio, for load tests).  Function-scoped, each stopped at
teardown: ``reset_server``, ``truncating_server``, ``stalling_server``,
``garbage_server``, ``slow_body_server``, ``refused_port`` and
``big_body_server`` (call it: ``big_body_server(1 << 30)`` gives a URL).

Every fixture's value is a ``ServerURL``: a str ``"http://127.0.0.1:PORT"``
with ``.url``, ``.port``, ``.server`` and ``url("/path")``.

Descriptor guard (fdguard.py): the descriptors each server owns (listening
sockets, wake-up pipes, event-loop descriptors) are protected from its start
to its stop, and the autouse ``fd_guard`` fixture checks after every test
that each is still open with the identity it had; a test protects its own
pipes and sockets with ``fd_guard.protect(fd, "what")``.
"""

import os
import platform
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402
from fdguard import GUARD, fail, fd_guard  # noqa: E402,F401  (fd_guard: autouse fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    # Load tests keep thousands of sockets open (both ends live in this process).
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def pytest_report_header(config):
    lines = ["interpreter: %s %s (%s)" % (platform.python_implementation(),
                                         platform.python_version(), sys.executable)]
    try:
        import curlmulti
    except Exception as e:                      # the library may be mid-change
        lines.append("curlmulti: not importable: %r" % (e,))
        return lines
    where = os.path.dirname(os.path.abspath(curlmulti.__file__))
    native = getattr(curlmulti.AsyncCurlMulti, "_use_native", False)
    lines.append("AsyncCurlMulti driver: %s" % ("native event core" if native else "pure Python"))
    lines.append("curlmulti: %s from %s" % (getattr(curlmulti, "__version__", "?"), where))
    if os.environ.get("CURLMULTI_TEST_INSTALLED") and where == os.path.join(ROOT, "curlmulti"):
        raise pytest.UsageError("tests imported curlmulti from the source tree (%s), not the "
                                "installed package; run pytest from outside the repo" % where)
    return lines


def _serve(server, value=None):
    server.start()
    owned = server.owned_fds()
    GUARD.protect_all(owned)
    try:
        yield server.url if value is None else value
    finally:
        problems = GUARD.release(owned)
        server.stop()
        if problems:
            fail(problems, "when stopping %s" % type(server).__name__)


@pytest.fixture
def python_driver(monkeypatch):
    """Pin AsyncCurlMulti to its pure-Python driver: for the tests of that
    driver's own internals (its Python socket callback, its select.epoll
    set), which the native event core does not have."""
    from curlmulti import AsyncCurlMulti
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", False)


@pytest.fixture(scope="session")
def httpbin():
    """httpbin under waitress (keep-alive, 64 workers): ``httpbin("/get")``."""
    yield from _serve(servers.HttpbinServer())


@pytest.fixture(scope="session")
def fast_server():
    """asyncio HTTP/1.1 keep-alive server: /bytes/N /status/N /delay/S /echo /headers /get."""
    yield from _serve(servers.FastServer())


@pytest.fixture(scope="module")
def fault_server():
    """One asyncio server, many faults (faultservers.py): ``.url``, ``.tls_url``,
    ``.wrong_host_url``, ``.refused_url``, ``.ca_file``, ``.wait_idle()``."""
    import faultservers
    server = faultservers.FaultServer()
    yield from _serve(server, server)


@pytest.fixture
def reset_server():
    """200 + part of the body, then RST; ``/before-headers``: RST with no reply."""
    yield from _serve(servers.ResetServer())


@pytest.fixture
def truncating_server():
    """Content-Length 1000, 500 bytes sent, clean close; ``/empty``: close with no reply."""
    yield from _serve(servers.TruncatingServer())


@pytest.fixture
def stalling_server():
    """Reads the request, never answers; ``/after-headers``: headers, then nothing."""
    yield from _serve(servers.StallingServer())


@pytest.fixture
def garbage_server():
    """Replies with bytes that are not HTTP."""
    yield from _serve(servers.GarbageServer())


@pytest.fixture
def slow_body_server():
    """Drips a 20-byte body, one byte per 50 ms (``?bytes=&chunk=&interval=``)."""
    yield from _serve(servers.SlowBodyServer())


@pytest.fixture
def refused_port():
    """A URL whose port has nothing listening (connection refused)."""
    yield from _serve(servers.RefusedPort())


@pytest.fixture
def big_body_server():
    """``big_body_server(size)`` gives the URL of a body of ``size`` pattern bytes,
    made on the fly; ``big_body_server.url`` is the server's base URL."""
    server = servers.BigBodyServer()
    yield from _serve(server, server)
