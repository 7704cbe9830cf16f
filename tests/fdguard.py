"""A guard for descriptors the test process owns (used by conftest.py).

A descriptor has one owner, who closes it once.  When something else closes
it (a double close: two objects that both believe they own the number, such
as an OPENSOCKETFUNCTION that returned ``s.fileno()`` while ``s`` lived on),
the owner's next use fails with EBADF, or worse, the number has been reused
and the owner reads, writes or closes someone else's file.

``FdGuard.protect(fd, what)`` records the descriptor's identity (``st_dev``,
``st_ino`` and ``st_mode`` from ``fstat``); ``check()`` fstats every protected
descriptor again and names each one that was closed, or closed and reused
for something else.  An fstat costs about a microsecond: checking a few dozen
descriptors after every test is cheap.
"""

import errno
import os
import stat

import pytest

_KINDS = [(stat.S_ISSOCK, "socket"), (stat.S_ISFIFO, "pipe"), (stat.S_ISREG, "file"),
          (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device")]


def identity(fd):
    """(st_dev, st_ino, st_mode) of an open descriptor; OSError if it is not open."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino, st.st_mode


def describe(ident):
    mode = ident[2]
    kind = next((name for test, name in _KINDS if test(mode)), "mode %o" % mode)
    return "%s (dev %d, inode %d)" % (kind, ident[0], ident[1])


class FdGuard(object):

    def __init__(self):
        self._fds = {}              # fd -> (identity, what)

    def protect(self, fd, what):
        """Protect ``fd`` (open now) until ``release()``; ``what`` names it in reports."""
        ident = identity(fd)
        old = self._fds.get(fd)
        if old is not None and old[0] != ident:
            raise ValueError("fd %d is protected already as %s" % (fd, old[1]))
        self._fds[fd] = (ident, what)

    def protect_all(self, fds):
        """``fds``: {descriptor: what it is}, as the servers' ``owned_fds()`` give."""
        for fd, what in fds.items():
            self.protect(fd, what)

    def _problem(self, fd):
        ident, what = self._fds[fd]
        try:
            now = identity(fd)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
            return "fd %d (%s, a %s) was closed by someone other than its owner" % (
                fd, what, describe(ident))
        if now != ident:
            return ("fd %d (%s, a %s) was closed by someone other than its owner, and the "
                    "number reused: it is now a %s" % (fd, what, describe(ident), describe(now)))
        return None

    def check(self, fds=None):
        """The problems (a list of str) with the protected descriptors, or with
        those of ``fds`` only.  A descriptor found wrong is no longer protected,
        so one defect is reported once."""
        problems = []
        for fd in list(self._fds if fds is None else fds):
            if fd in self._fds:
                problem = self._problem(fd)
                if problem is not None:
                    problems.append(problem)
                    del self._fds[fd]
        return problems

    def release(self, fds):
        """Stop protecting ``fds`` (the owner is about to close them), after a
        last check; returns its problems."""
        fds = list(fds)
        problems = self.check(fds)
        for fd in fds:
            self._fds.pop(fd, None)
        return problems

    def protected(self):
        """{fd: what} of the descriptors protected now."""
        return {fd: what for fd, (_, what) in self._fds.items()}

    def __len__(self):
        return len(self._fds)


class Scope(object):
    """A view of a guard whose protections end with it (one test's own)."""

    def __init__(self, guard):
        self.guard = guard
        self.fds = set()

    def protect(self, fd, what):
        self.guard.protect(fd, what)
        self.fds.add(fd)

    def protect_all(self, fds):
        for fd, what in fds.items():
            self.protect(fd, what)

    def release(self, fd):
        """The test is about to close ``fd`` itself: stop protecting it."""
        self.fds.discard(fd)
        return self.guard.release([fd])

    def check(self):
        return self.guard.check()

    def close(self):
        """Release this scope's descriptors (after a last check of them)."""
        fds, self.fds = self.fds, set()
        return self.guard.release(fds)


# The process's guard: conftest.py protects the descriptors of the servers its
# fixtures start, from start to stop; a test protects its own with fd_guard.
GUARD = FdGuard()


def fail(problems, when):
    pytest.fail("descriptor guard, %s:\n  %s" % (when, "\n  ".join(problems)), pytrace=False)


@pytest.fixture(autouse=True)
def fd_guard():
    """Autouse: after each test, every protected descriptor must still be open
    with the identity it had when it was protected.  A test protects its own
    descriptors with ``fd_guard.protect(fd, what)`` (released after the test,
    or by ``fd_guard.release(fd)`` before it closes one itself)."""
    scope = Scope(GUARD)
    yield scope
    problems = scope.close() + GUARD.check()
    if problems:
        fail(problems, "after the test")
