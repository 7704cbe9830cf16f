"""The descriptor guard (fdguard.py, used by conftest.py for the whole suite)
catches a protected descriptor closed, or closed and reused, by someone other
than its owner."""

import os
import socket
import stat
import textwrap

import pytest

from fdguard import GUARD, FdGuard, identity

pytest_plugins = ["pytester"]
TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_untouched_descriptors_pass(pipe):
    guard = FdGuard()
    r, w = pipe
    guard.protect(r, "pipe, read end")
    guard.protect(w, "pipe, write end")
    os.write(w, b"x")                           # used, not closed: fine
    assert os.read(r, 1) == b"x"
    assert guard.check() == [] and len(guard) == 2
    assert guard.release([r, w]) == [] and len(guard) == 0


def test_a_closed_descriptor_is_named(pipe):
    guard = FdGuard()
    r, w = pipe
    guard.protect(r, "pipe, read end")
    guard.protect(w, "pipe, write end")
    os.close(w)                                 # not by its owner
    problems = guard.check()
    assert len(problems) == 1
    assert problems[0].startswith("fd %d (pipe, write end, a pipe (dev " % w)
    assert "was closed by someone other than its owner" in problems[0]
    assert guard.protected() == {r: "pipe, read end"}   # reported once
    assert guard.check() == []


def test_a_reused_descriptor_is_named(pipe):
    guard = FdGuard()
    r, w = pipe
    guard.protect(r, "pipe, read end")
    with socket.socket() as s:
        # Close r and give its number to a socket in one step (dup2), as when
        # someone closes a descriptor that is not theirs and the number is
        # taken again before its owner looks.
        os.dup2(s.fileno(), r)
        assert stat.S_ISSOCK(os.fstat(r).st_mode)
        problems = guard.check()
    assert len(problems) == 1
    assert problems[0].startswith("fd %d (pipe, read end, a pipe (dev " % r)
    assert "and the number reused: it is now a socket (dev " in problems[0]


def test_release_checks_before_letting_go(pipe):
    guard = FdGuard()
    r, w = pipe
    guard.protect(r, "pipe, read end")
    os.close(r)
    problems = guard.release([r])
    assert len(problems) == 1 and "fd %d (pipe, read end" % r in problems[0]
    assert len(guard) == 0


def test_protecting_a_closed_descriptor_fails(pipe):
    r, w = pipe
    os.close(r)
    with pytest.raises(OSError):
        FdGuard().protect(r, "closed already")


def test_the_suite_protects_the_servers_descriptors(httpbin, fast_server, reset_server):
    protected = GUARD.protected()
    for server in (httpbin.server, fast_server.server, reset_server.server):
        owned = server.owned_fds()
        assert owned and all(protected.get(fd) == what for fd, what in owned.items())
    what = set(protected.values())
    assert {"httpbin: waitress listening socket", "httpbin: waitress trigger pipe, read end",
            "httpbin: waitress trigger pipe, write end",
            "fast server: listening socket", "fast server: event loop self-pipe, read end",
            "reset server: wake-up socketpair, read end"} <= what
    for fd in protected:
        identity(fd)                            # all open now


def test_fd_guard_fixture_protects_a_tests_own_descriptors(fd_guard, pipe):
    r, w = pipe
    fd_guard.protect(r, "this test's pipe")
    assert GUARD.protected()[r] == "this test's pipe"
    assert fd_guard.release(r) == []
    assert r not in GUARD.protected()


def _run_inner(pytester, monkeypatch, source):
    """Run ``source`` as a test file in a pytest of its own, with the guard's
    autouse fixture (``-p fdguard``) and this directory's helpers importable."""
    monkeypatch.setenv("PYTHONPATH", TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest_subprocess("-p", "fdguard", "-p", "no:cacheprovider", "-rA",
                                         timeout=120)


@pytest.mark.timeout(180)
def test_a_test_that_closes_a_protected_descriptor_fails(pytester, monkeypatch):
    result = _run_inner(pytester, monkeypatch, """
        import os

        def test_closes_what_is_not_its_own(fd_guard):
            r, w = os.pipe()
            fd_guard.protect(r, "the inner test's pipe, read end")
            print("PROTECTED", r)
            os.close(r)                 # a deliberate double owner
            os.close(w)

        def test_clean(fd_guard):
            r, w = os.pipe()
            fd_guard.protect(r, "a pipe closed by its owner")
            fd_guard.release(r)
            os.close(r)
            os.close(w)
    """)
    result.assert_outcomes(passed=2, errors=1)
    out = result.stdout.str()
    fd = int(out.split("PROTECTED ", 1)[1].split()[0])
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_closes_what_is_not_its_own*",
        "*descriptor guard, after the test:*",
        "*fd %d (the inner test's pipe, read end, a pipe (dev *) was closed by someone "
        "other than its owner*" % fd,
    ])


@pytest.mark.timeout(180)
def test_two_owners_of_an_opensocket_descriptor_are_caught(pytester, monkeypatch):
    """An OPENSOCKETFUNCTION that returns ``s.fileno()`` while ``s`` lives on
    gives the descriptor two owners: libcurl closes it after the transfer,
    the number is taken by a new pipe, and closing ``s`` then closes the
    pipe.  (In its own process: the free number must not be taken by another
    thread between libcurl's close and the pipe.)  If the library refuses a
    bare int there, the inner test says so and the hazard cannot arise."""
    result = _run_inner(pytester, monkeypatch, """
        import io, os, socket
        import pytest
        import curlmulti
        from servers import FastServer

        def test_two_owners(fd_guard):
            with FastServer() as server:
                s = socket.socket()
                fd = s.fileno()
                c = curlmulti.Curl()
                c.setopt(curlmulti.URL, server.url("/get"))
                c.setopt(curlmulti.WRITEDATA, io.BytesIO())
                c.setopt(curlmulti.FORBID_REUSE, 1)         # libcurl closes it at the end
                c.setopt(curlmulti.OPENSOCKETFUNCTION, lambda purpose, address: s.fileno())
                try:
                    c.perform()
                except curlmulti.error as e:
                    if isinstance(e.__cause__, TypeError):
                        pytest.skip("BARE-INT-REFUSED: %s" % e.__cause__)
                    raise
                finally:
                    c.close()
            # libcurl closed fd; s still holds the number.  A pipe takes it.
            r, w = os.pipe()
            if r != fd:
                os.dup2(r, fd)
                os.close(r)
            fd_guard.protect(fd, "a pipe on the number libcurl closed")
            print("PROTECTED", fd)
            s.close()                       # the second owner closes the pipe
            os.close(w)
    """)
    out = result.stdout.str()
    if "BARE-INT-REFUSED" in out:
        result.assert_outcomes(skipped=1)
        return
    result.assert_outcomes(passed=1, errors=1)
    fd = int(out.split("PROTECTED ", 1)[1].split()[0])
    result.stdout.fnmatch_lines([
        "*descriptor guard, after the test:*",
        "*fd %d (a pipe on the number libcurl closed, a pipe (dev *) was closed by someone "
        "other than its owner*" % fd,
    ])
