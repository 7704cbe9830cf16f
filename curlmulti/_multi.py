"""``CurlMulti``: pycurl's multi handle over libcurl's ``CURLM *``.

Lifetimes: while a ``Curl`` is attached, the multi holds it strongly (in
``_handles``) and the Curl holds the multi only weakly.  libcurl forbids
removing or cleaning up an easy handle from inside one of its callbacks, so
while a libcurl call of this multi is on the stack (``_depth > 0``) such
requests are queued in ``_deferred`` and carried out as soon as that call
returns."""

import weakref

from . import _callbacks  # noqa: F401  (registers the trampolines)
from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._easy import Curl
from ._errors import (check_multi, closed_error, error, misuse, multi_strerror,
                      raise_from_callback)

_M_SOCKETFUNCTION = lib.CURLMOPT_SOCKETFUNCTION
_M_TIMERFUNCTION = lib.CURLMOPT_TIMERFUNCTION
_RESERVED = {lib.CURLMOPT_SOCKETDATA, lib.CURLMOPT_TIMERDATA}
_POLL_REMOVE = lib.CURL_POLL_REMOVE
_MSG_DONE = CONSTANTS.get("CURLMSG_DONE", 1)
_ABORTED = CONSTANTS.get("E_MULTI_ABORTED_BY_CALLBACK", lib.CURLM_INTERNAL_ERROR)
_E_ABORTED_BY_CALLBACK = lib.CURLE_ABORTED_BY_CALLBACK
_FDSET_CAP = 1024  # FD_SETSIZE: curl_multi_fdset cannot report more


class CurlMulti(object):
    """A libcurl multi handle (``curl_multi_init``), pycurl-compatible.

    ``close_handles=True`` closes the attached easy handles when the multi is
    closed; by default they are only removed."""

    _h = None
    _depth = 0

    def __init__(self, close_handles=False):
        h = lib.curl_multi_init()
        if h == ffi.NULL:
            raise error(lib.CURLM_OUT_OF_MEMORY, "curl_multi_init() failed")
        self._h = h
        self._ud = ffi.new_handle(self)
        self._close_handles = bool(close_handles)
        self._handles = {}       # Curl -> None, in order of addition
        self._assigned = {}      # socket -> ffi.new_handle(object) given to libcurl
        self._deferred = []      # (Curl, CURL *, close?) waiting for the stack to unwind
        self._running = ffi.new("int *")
        self._socket_cb = None
        self._timer_cb = None
        self._callback_exc = None
        self._msgs = ffi.new("int *")

    # -- state ------------------------------------------------------------------

    def _handle(self, method):
        h = self._h
        if h is None:
            raise closed_error("CurlMulti object", method)
        return h

    @property
    def closed(self):
        return self._h is None

    def __contains__(self, curl):
        return curl in self._handles

    def _callback_failed(self, exc):
        if self._callback_exc is None:
            self._callback_exc = exc

    def _enter(self):
        self._depth += 1

    def _leave(self, code):
        """Unwind one libcurl call: run deferred detaches, then raise what a
        callback or libcurl reported."""
        self._depth -= 1
        if self._depth == 0 and self._deferred:
            self._run_deferred()
        exc = self._callback_exc
        if exc is not None:
            self._callback_exc = None
            raise_from_callback(error(code or _ABORTED, "a multi callback raised %s: %s"
                                      % (type(exc).__name__, exc)), exc)
        if code:
            raise error(code, multi_strerror(code))

    # -- handles ------------------------------------------------------------

    def add_handle(self, curl):
        """Attach an easy handle; the multi keeps it alive until removed."""
        h = self._handle("add_handle")
        if not isinstance(curl, Curl):
            raise TypeError("add_handle() takes a Curl, not %s" % type(curl).__name__)
        easy = curl._handle("add_handle")
        if curl._attached_multi() is not None:
            where = "this" if curl._attached_multi() is self else "another"
            raise misuse("cannot add the Curl object - it is already attached to %s CurlMulti" % where)
        if curl._busy:
            raise misuse("cannot add the Curl object - perform() is running on it")
        curl.callback_error = None
        self._enter()
        code = lib.curl_multi_add_handle(h, easy)
        if code == 0:
            self._handles[curl] = None
            curl._multi_ref = weakref.ref(self)
        self._leave(code)

    def remove_handle(self, curl):
        """Detach an easy handle (it stays open)."""
        self._handle("remove_handle")
        if not isinstance(curl, Curl):
            raise TypeError("remove_handle() takes a Curl, not %s" % type(curl).__name__)
        if curl not in self._handles:
            if curl._h is None:
                raise closed_error("Curl object", "remove_handle")
            raise misuse("cannot remove the Curl object - it is not attached to this CurlMulti")
        self._detach(curl, closing=False)

    def _detach(self, curl, closing):
        """Remove curl from libcurl and from _handles; with closing, free it
        too.  Deferred while a libcurl call of this multi is running."""
        if self._depth:
            if not any(d[0] is curl for d in self._deferred):
                self._deferred.append((curl, curl._h, closing))
            elif closing:
                self._deferred = [(c, e, c is curl or cl) for c, e, cl in self._deferred]
            if closing:
                curl._h = None  # closed for Python at once; freed on unwinding
            return
        self._remove_now(curl, curl._h)
        if closing:
            curl._close_now()

    def _remove_now(self, curl, easy):
        self._handles.pop(curl, None)
        curl._multi_ref = None
        if self._h is not None and easy is not None:
            self._enter()
            code = lib.curl_multi_remove_handle(self._h, easy)
            self._leave(code)

    def _run_deferred(self):
        while self._deferred:
            curl, easy, closing = self._deferred.pop(0)
            try:
                self._remove_now(curl, easy)
            finally:
                if closing and easy is not None:
                    lib.curl_easy_cleanup(easy)
                    curl._release()

    # -- driving transfers ----------------------------------------------------

    def perform(self):
        """``curl_multi_perform`` -> ``(0, running)``; raises on any error."""
        h = self._handle("perform")
        self._enter()
        code = lib.curl_multi_perform(h, self._running)
        self._leave(code)
        return 0, self._running[0]

    def socket_action(self, sockfd, ev_bitmask):
        """``curl_multi_socket_action`` -> ``(0, running)``."""
        h = self._handle("socket_action")
        if not isinstance(sockfd, int) or not isinstance(ev_bitmask, int):
            raise TypeError("socket_action() takes two ints")
        self._enter()
        code = lib.curl_multi_socket_action(h, sockfd, ev_bitmask, self._running)
        self._leave(code)
        return 0, self._running[0]

    def socket_all(self):
        """``curl_multi_socket_all`` -> ``(0, running)``."""
        h = self._handle("socket_all")
        self._enter()
        code = lib.curl_multi_socket_all(h, self._running)
        self._leave(code)
        return 0, self._running[0]

    def info_read(self, max_objects=None):
        """``curl_multi_info_read`` -> ``(queued, ok_list, err_list)``; the
        error entries are ``(curl, code, message)``."""
        h = self._handle("info_read")
        if max_objects is None:
            max_objects = 1 << 62
        elif not isinstance(max_objects, int):
            raise TypeError("info_read() takes an int")
        elif max_objects <= 0:
            raise ValueError("info_read(): max_objects must be positive")
        ok, failed = [], []
        msgs = self._msgs
        msgs[0] = 0
        while len(ok) + len(failed) < max_objects:
            msg = lib.curl_multi_info_read(h, msgs)
            if msg == ffi.NULL:
                break
            if msg.msg != _MSG_DONE:
                continue
            ud = lib.cm_easy_private(msg.easy_handle)
            if ud == ffi.NULL:
                continue
            curl = ffi.from_handle(ud)
            code = lib.cm_msg_result(msg)
            exc = curl.callback_error
            if code == 0 and exc is None:
                ok.append(curl)
            else:
                err = curl._transfer_error(code or _E_ABORTED_BY_CALLBACK)
                failed.append((curl, err.args[0], err.args[1]))
        return msgs[0], ok, failed

    def timeout(self):
        """``curl_multi_timeout``: milliseconds to wait, or -1."""
        h = self._handle("timeout")
        out = ffi.new("long *")
        check_multi(lib.curl_multi_timeout(h, out))
        return out[0]

    def fdset(self):
        """``curl_multi_fdset`` as three lists (read, write, except) for
        ``select.select``; descriptors >= 1024 cannot be reported this way."""
        h = self._handle("fdset")
        buf = ffi.new("int[]", _FDSET_CAP)
        n = lib.cm_multi_fdset(h, buf, _FDSET_CAP)
        if n < 0:
            raise error(lib.CURLM_INTERNAL_ERROR, "curl_multi_fdset() failed")
        r, w, x = [], [], []
        for i in range(n):
            fd, kind = divmod(buf[i], 4)
            if kind & 1:
                r.append(fd)
            if kind & 2:
                w.append(fd)
            if kind & 4:
                x.append(fd)
        return r, w, x

    def select(self, timeout=1.0):
        """Wait up to ``timeout`` seconds for activity on libcurl's sockets;
        returns the number of ready descriptors, 0 on timeout.  Uses poll(2)
        through ``curl_multi_poll``, so any descriptor number works.  When
        libcurl's own timer expires first with no socket ready, it returns 1:
        perform() has work to do."""
        h = self._handle("select")
        ms = _milliseconds(timeout)
        n = self._poll(h, lib.curl_multi_poll, ms)
        if n == 0:
            left = ffi.new("long *")
            if lib.curl_multi_timeout(h, left) == 0 and left[0] == 0:
                return 1
        return n

    def wait(self, timeout_ms=1000):
        """``curl_multi_wait``: the number of descriptors with activity."""
        return self._poll(self._handle("wait"), lib.curl_multi_wait, timeout_ms)

    def poll(self, timeout_ms=1000):
        """``curl_multi_poll``: like wait(), but sleeps even with no sockets and
        can be woken early by wakeup()."""
        return self._poll(self._handle("poll"), lib.curl_multi_poll, timeout_ms)

    def _poll(self, h, func, timeout_ms):
        if not isinstance(timeout_ms, int):
            raise TypeError("timeout must be an int number of milliseconds")
        if timeout_ms < 0:
            raise ValueError("timeout must not be negative")
        out = ffi.new("int *")
        check_multi(func(h, ffi.NULL, 0, min(timeout_ms, 0x7FFFFFFF), out))
        return out[0]

    def wakeup(self):
        """``curl_multi_wakeup``: end a poll() early; safe from any thread."""
        check_multi(lib.curl_multi_wakeup(self._handle("wakeup")))

    # -- sockets and options --------------------------------------------------

    def assign(self, sockfd, obj):
        """``curl_multi_assign``: attach obj to a socket (None clears); the
        object is passed as ``socketp`` to the socket callback."""
        h = self._handle("assign")
        if not isinstance(sockfd, int):
            raise TypeError("assign() takes an int socket")
        if obj is None:
            return self.unassign(sockfd)
        ud = ffi.new_handle(obj)
        check_multi(lib.curl_multi_assign(h, sockfd, ud))
        self._assigned[sockfd] = ud

    def unassign(self, sockfd):
        """Clear the object assigned to a socket and release it."""
        h = self._handle("unassign")
        if not isinstance(sockfd, int):
            raise TypeError("unassign() takes an int socket")
        if self._assigned.pop(sockfd, None) is not None:
            lib.curl_multi_assign(h, sockfd, ffi.NULL)  # libcurl may have dropped it already

    def _socket_event(self, what, fd, socketp):
        """Called by the socket trampoline."""
        try:
            result = self._socket_cb(what, fd, self, socketp)
        finally:
            if what == _POLL_REMOVE:
                self._assigned.pop(fd, None)  # libcurl forgets the socket now
        return result

    def setopt(self, option, value):
        """``curl_multi_setopt`` for every M_* option."""
        h = self._handle("setopt")
        if not isinstance(option, int):
            raise TypeError("option must be an int, not %s" % type(option).__name__)
        if option in _RESERVED:
            raise TypeError("M_SOCKETDATA and M_TIMERDATA are reserved by curlmulti")
        if option in (_M_SOCKETFUNCTION, _M_TIMERFUNCTION):
            if value is not None and not callable(value):
                raise TypeError("option %d takes a callable, not %s" % (option, type(value).__name__))
            check_multi(lib.cm_multi_set_callback(h, option, self._ud if value is not None else ffi.NULL))
            if option == _M_SOCKETFUNCTION:
                self._socket_cb = value
            else:
                self._timer_cb = value
            return
        base = option - option % 10000
        if base == 0:
            if not isinstance(value, int):
                raise TypeError("option %d takes an int, not %s" % (option, type(value).__name__))
            check_multi(lib.cm_multi_setopt_long(h, option, value))
        elif base == 30000:
            if not isinstance(value, int):
                raise TypeError("option %d takes an int, not %s" % (option, type(value).__name__))
            check_multi(lib.cm_multi_setopt_off_t(h, option, value))
        elif base == 10000 and isinstance(value, (list, tuple)):
            items = [ffi.new("char[]", v.encode("ascii") if isinstance(v, str) else v) for v in value]
            array = ffi.new("char *[]", items + [ffi.NULL])
            check_multi(lib.cm_multi_setopt_ptr(h, option, array))
            self.__dict__.setdefault("_keep", {})[option] = (items, array)
        elif base in (10000, 20000):
            raise TypeError("option %d is not supported by curlmulti.CurlMulti.setopt" % option)
        else:
            check_multi(lib.CURLM_UNKNOWN_OPTION)

    # -- life cycle ---------------------------------------------------------

    def close(self):
        """Remove every easy handle (closing them with close_handles=True) and
        free the multi handle.  Idempotent; an error from inside a callback."""
        h = self._h
        if h is None:
            return
        if self._depth:
            raise misuse("cannot invoke close() - perform() or socket_action() is running")
        # No user callbacks while tearing down.
        lib.cm_multi_set_callback(h, _M_SOCKETFUNCTION, ffi.NULL)
        lib.cm_multi_set_callback(h, _M_TIMERFUNCTION, ffi.NULL)
        self._socket_cb = self._timer_cb = None
        handles = list(self._handles)
        for curl in handles:
            self._remove_now(curl, curl._h)
        self._h = None
        lib.curl_multi_cleanup(h)
        self._assigned.clear()
        if self._close_handles:
            for curl in handles:
                curl.close()

    def __del__(self):
        h = self._h
        if h is None:
            return
        self._h = None
        lib.cm_multi_set_callback(h, _M_SOCKETFUNCTION, ffi.NULL)
        lib.cm_multi_set_callback(h, _M_TIMERFUNCTION, ffi.NULL)
        for curl in list(self._handles):
            if curl._h is not None:
                lib.curl_multi_remove_handle(h, curl._h)
            curl._multi_ref = None
        lib.curl_multi_cleanup(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "<curlmulti.CurlMulti %s>" % ("closed" if self._h is None else "with %d handles" % len(self._handles))


def _milliseconds(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds")
    if timeout != timeout or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    return int(min(timeout * 1000.0, 0x7FFFFFFF))


for _name, _value in CONSTANTS.items():
    setattr(CurlMulti, _name, _value)
