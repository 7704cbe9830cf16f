"""The child side of tests/test_properties.py: runs property examples in a
process of its own, so a crash or a hang is reported with its input instead
of killing pytest.

Protocol (binary, on the stdin/stdout pipes the parent opens): the parent
sends frames ``4-byte big-endian length + pickle``; the first reply is
``("hello", info)``, then each request ``(prop, example, config)`` gets one
reply, ``("ok", counters)`` or ``("fail", message)``.  Examples are plain
data (tuples, str, int, bytes): the objects they name (callables, Curl and
CurlShare instances, sinks...) are made here by ``build()``.  Anything the
library writes to fd 1 goes to stderr, which the parent keeps in a file and
shows after a crash; faulthandler prints every thread's stack on a fatal
signal, and on SIGABRT, which the parent sends to a child that hangs.

Run by hand (one example, printed as the parent reports it):
``python tests/prop_worker.py --one PROP 'EXAMPLE' FAST_URL HTTPBIN_URL``."""

import collections
import faulthandler
import gc
import io
import os
import pickle
import select
import struct
import sys
import threading
import time
import traceback

import curlmulti as pycurl

ALLOWED = (TypeError, ValueError, OverflowError, KeyError, RuntimeError, BufferError, pycurl.error)
JOIN_TIMEOUT = 30.0         # a thread still running after this is a hang


class PropertyFailed(Exception):
    """The example broke the property: the message says how."""


class Outcomes(object):
    """Counts what the calls of an example did, and checks each exception."""

    def __init__(self):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.failures = []

    def call(self, what, func, *args, **kwargs):
        """func(*args): its result, or None when it raised an allowed exception."""
        try:
            result = func(*args, **kwargs)
        except ALLOWED as e:
            self.check_error(what, e)
            self.count("%s:%s" % (what, classify(e)))
            return None
        except BaseException as e:
            self.fail("%s raised %s: %r\n%s" % (what, type(e).__name__, e, traceback.format_exc()))
            return None
        self.count("%s:ok" % what)
        return result

    def check_error(self, what, e):
        if isinstance(e, pycurl.error):
            args = e.args
            if len(args) != 2 or type(args[0]) is not int or not isinstance(args[1], str):
                self.fail("%s raised curlmulti.error with args %r, not (int, str)" % (what, args))

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def fail(self, message):
        with self.lock:
            self.failures.append(message)

    def check(self):
        if self.failures:
            raise PropertyFailed("\n---\n".join(self.failures[:5]))


def classify(e):
    if isinstance(e, pycurl.error):
        if e.args and e.args[0] == 0:
            text = e.args[1] if len(e.args) > 1 else ""
            if "closed" in text:
                return "closed"
            if "running" in text:
                return "busy"
            return "refused"
        return "error%s" % (e.args[0] if e.args else "?")
    return type(e).__name__


# ---------------------------------------------------------------- values

def _func_none(*args):
    return None


def _func_raise(*args):
    raise ValueError("raised by a property-test callback")


def _func_str(*args):
    return "not a number"


def _func_huge(*args):
    return 1 << 80


class _BadIndex(object):
    def __index__(self):
        raise RuntimeError("__index__ refused")

    def __int__(self):
        raise RuntimeError("__int__ refused")


class _IntSub(int):
    pass


class _StrSub(str):
    pass


class _BytesSub(bytes):
    pass


class _Writer(object):
    def write(self, data):
        return None

    def read(self, n):
        return b""


class _BadWriter(object):
    write = 5
    read = "x"


class _Callable(object):
    def __call__(self, *args):
        return 0


class _BadEq(object):
    def __eq__(self, other):
        raise RuntimeError("__eq__ refused")

    __hash__ = object.__hash__


def _make(kind, ctx):
    """The object an ("obj", kind) value stands for; ctx keeps what must be closed."""
    if kind == "func_none":
        return _func_none
    if kind == "func_raise":
        return _func_raise
    if kind == "func_str":
        return _func_str
    if kind == "func_huge":
        return _func_huge
    if kind == "lambda":
        return lambda *a: None
    if kind == "builtin":
        return len
    if kind == "callable_obj":
        return _Callable()
    if kind == "object":
        return object()
    if kind == "bad_index":
        return _BadIndex()
    if kind == "int_sub":
        return _IntSub(7)
    if kind == "str_sub":
        return _StrSub("http://127.0.0.1:1/")
    if kind == "bytes_sub":
        return _BytesSub(b"x-test: 1")
    if kind == "writer":
        return _Writer()
    if kind == "bad_writer":
        return _BadWriter()
    if kind == "bad_eq":
        return _BadEq()
    if kind == "bytesio":
        return io.BytesIO()
    if kind == "type":
        return int
    if kind == "curl":
        return ctx.own(pycurl.Curl())
    if kind == "curl_closed":
        c = pycurl.Curl()
        c.close()
        return c
    if kind == "share":
        return ctx.own(pycurl.CurlShare())
    if kind == "share_closed":
        s = pycurl.CurlShare()
        s.close()
        return s
    if kind == "multi":
        return ctx.own(pycurl.CurlMulti())
    if kind == "buffer":
        return pycurl.Buffer()
    if kind == "filesink":
        fd = os.open(os.devnull, os.O_WRONLY)
        ctx.fds.append(fd)
        return pycurl.FileSink(fd)
    if kind == "self":
        return ctx.self_obj
    raise AssertionError("unknown object kind %r" % (kind,))


def build(desc, ctx):
    """The Python value a value description stands for."""
    tag = desc[0]
    if tag == "lit":
        return desc[1]
    if tag == "name":
        return getattr(pycurl, desc[1])
    if tag == "bytearray":
        return bytearray(desc[1])
    if tag == "memoryview":
        return memoryview(desc[1])
    if tag == "list":
        return [build(d, ctx) for d in desc[1]]
    if tag == "tuple":
        return tuple(build(d, ctx) for d in desc[1])
    if tag == "dict":
        return {k: build(d, ctx) for k, d in desc[1]}
    if tag == "obj":
        return _make(desc[1], ctx)
    if tag == "url":
        return ctx.url(desc[1])
    raise AssertionError("unknown value description %r" % (desc,))


class Context(object):
    """What one example made: closed at its end."""

    def __init__(self, config):
        self.config = config
        self.owned = []
        self.fds = []
        self.self_obj = None

    def url(self, path):
        server, _, path = path.partition(":")
        return self.config[server] + path

    def own(self, obj):
        self.owned.append(obj)
        return obj

    def close(self, out):
        for obj in reversed(self.owned):
            out.call("cleanup close", obj.close)
        self.owned = []
        for fd in self.fds:
            os.close(fd)
        self.fds = []


# ---------------------------------------------------------------- checks shared by the properties

def drive(m, out, what, rounds=400, until=None, on_idle=None):
    """perform()/info_read()/select() until nothing runs (or until() is
    true, or rounds run out); the transfers that ended, as info_read gives them."""
    done_ok, done_failed = [], []
    for _ in range(rounds):
        r = out.call(what + " perform", m.perform)
        if r is None:
            return None
        res = out.call(what + " info_read", m.info_read)
        if res is not None:
            done_ok += res[1]
            done_failed += res[2]
        if r[1] == 0 or (until is not None and until()):
            return done_ok, done_failed
        if out.call(what + " select", m.select, 0.1) == 0 and on_idle is not None:
            on_idle()
    return done_ok, done_failed


def check_easy_usable(out, config, what):
    """A new Curl still fetches from the server: the library is not corrupt."""
    c = pycurl.Curl()
    try:
        buf = io.BytesIO()
        c.setopt(pycurl.URL, config["fast"] + "/bytes/3000")
        c.setopt(pycurl.WRITEFUNCTION, buf.write)
        c.perform()
        code = c.getinfo(pycurl.RESPONSE_CODE)
        if code != 200 or buf.getvalue() != bytes(i % 256 for i in range(3000)):
            out.fail("%s: a new Curl got %d and %d bytes" % (what, code, len(buf.getvalue())))
    except BaseException as e:
        out.fail("%s: a new Curl failed: %r\n%s" % (what, e, traceback.format_exc()))
    finally:
        c.close()


def check_multi_usable(m, out, config, what):
    """The multi (not closed, no handle attached any more) still runs a transfer."""
    c = pycurl.Curl()
    buf = io.BytesIO()
    c.setopt(pycurl.URL, config["fast"] + "/bytes/2000")
    c.setopt(pycurl.WRITEFUNCTION, buf.write)
    try:
        m.add_handle(c)
        result = None
        for _ in range(600):
            _, running = m.perform()
            _, ok, failed = m.info_read()
            # (A handle the example dropped may still be attached and end now.)
            if c in ok or c in [f[0] for f in failed]:
                result = ([x for x in ok if x is c], [f for f in failed if f[0] is c])
                break
            if not running:
                continue
            m.select(0.1)
        if result is None:
            out.fail("%s: a transfer added afterwards never finished" % what)
        elif result[1] or c.getinfo(pycurl.RESPONSE_CODE) != 200 or len(buf.getvalue()) != 2000:
            out.fail("%s: a transfer added afterwards ended as %r (%d bytes)"
                     % (what, result, len(buf.getvalue())))
        m.remove_handle(c)
    except BaseException as e:
        out.fail("%s: the multi cannot run a new transfer: %r\n%s" % (what, e, traceback.format_exc()))
    finally:
        c.close()


def check_handles(m, handles, out, what):
    """Consistency once no thread uses them: attached <=> in the multi, and
    every handle closes."""
    for c in handles:
        if c is None:
            continue
        if m is not None and not m.closed:
            inside = c in m
            if c.closed and inside:
                out.fail("%s: a closed Curl is still attached to the multi" % what)
            elif not c.closed and inside != (c.multi() is m):
                out.fail("%s: `c in m` is %s but c.multi() is %r" % (what, inside, c.multi()))
        try:
            c.close()
        except BaseException as e:
            out.fail("%s: Curl.close() with no thread running refused: %r" % (what, e))


def close_multi(m, out, what):
    try:
        m.close()
    except BaseException as e:
        out.fail("%s: CurlMulti.close() with no thread running refused: %r" % (what, e))


def join(threads, out, what):
    for t in threads:
        t.join(JOIN_TIMEOUT)
    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        stacks = io.StringIO()
        frames = sys._current_frames()
        for t in threads:
            if t.is_alive() and t.ident in frames:
                stacks.write("thread %s:\n%s" % (t.name, "".join(traceback.format_stack(frames[t.ident]))))
        raise PropertyFailed("%s: threads still running after %.0f s (hung): %s\n%s"
                             % (what, JOIN_TIMEOUT, alive, stacks.getvalue()))


def fast_switching():
    """Switch threads as often as the interpreter allows (races show sooner)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    return old


# ---------------------------------------------------------------- property: Curl API with any value

def prop_curl_api(example, config):
    """Every Curl method with any option, info and value: allowed exceptions only."""
    out = Outcomes()
    ctx = Context(config)
    c = ctx.own(pycurl.Curl())
    ctx.self_obj = c
    handles = [c]
    for op in example:
        name = op[0]
        target = handles[-1]
        if name == "setopt":
            option, value = build(op[1], ctx), build(op[2], ctx)
            kwargs = {"use_memoryview": True} if op[3] else {}
            out.call("setopt", target.setopt, option, value, **kwargs)
        elif name == "setopt_string":
            out.call("setopt_string", target.setopt_string, build(op[1], ctx), build(op[2], ctx))
        elif name == "unsetopt":
            out.call("unsetopt", target.unsetopt, build(op[1], ctx))
        elif name in ("getinfo", "getinfo_raw"):
            out.call(name, getattr(target, name), build(op[1], ctx))
        elif name == "pause":
            out.call("pause", target.pause, build(op[1], ctx))
        elif name == "reset":
            out.call("reset", target.reset)
        elif name == "duphandle":
            dup = out.call("duphandle", target.duphandle)
            if dup is not None:
                handles.append(ctx.own(dup))
        elif name == "errstr":
            out.call("errstr", target.errstr)
        elif name == "close":
            out.call("close", target.close)
        elif name == "del":
            # Drop the last handle (del + collect): its __del__ frees it.
            if len(handles) > 1:
                dropped = handles.pop()
                ctx.owned = [o for o in ctx.owned if o is not dropped]
                del dropped
                gc.collect()
        else:
            raise AssertionError("unknown op %r" % (op,))
    for h in handles:
        if not h.closed:
            # Sanity: a handle the calls left open answers and closes.
            out.call("final getinfo", h.getinfo, pycurl.RESPONSE_CODE)
        try:
            h.close()
        except BaseException as e:
            out.fail("Curl.close() after the calls raised %r" % (e,))
    ctx.close(out)
    out.check()
    return out.counts


# ---------------------------------------------------------------- property: multi and share API with any value

def prop_multi_share_api(example, config):
    """CurlMulti and CurlShare methods with any value: allowed exceptions only."""
    out = Outcomes()
    ctx = Context(config)
    m = ctx.own(pycurl.CurlMulti())
    s = ctx.own(pycurl.CurlShare())
    c = ctx.own(pycurl.Curl())
    ctx.self_obj = m
    for op in example:
        name = op[0]
        args = [build(d, ctx) for d in op[1:]]
        if name == "msetopt":
            out.call("m.setopt", m.setopt, *args)
        elif name == "ssetopt":
            out.call("s.setopt", s.setopt, *args)
        elif name in ("share", "unshare"):
            out.call("s." + name, getattr(s, name), *args)
        elif name == "use_share":
            out.call("c.setopt(SHARE)", c.setopt, pycurl.SHARE, s)
        elif name in ("add_handle", "remove_handle", "assign", "unassign", "select", "poll", "wait",
                      "info_read", "socket_action", "timeout", "fdset", "socket_all", "perform",
                      "wakeup"):
            out.call("m." + name, getattr(m, name), *args)
        elif name == "madd_curl":
            out.call("m.add_handle", m.add_handle, c)
        elif name == "mremove_curl":
            out.call("m.remove_handle", m.remove_handle, c)
        elif name == "mclose":
            out.call("m.close", m.close)
        elif name == "sclose":
            out.call("s.close", s.close)
        elif name == "cclose":
            out.call("c.close", c.close)
        else:
            raise AssertionError("unknown op %r" % (op,))
    check_handles(m, [c], out, "after the calls")
    for obj in (m, s):
        try:
            obj.close()
        except BaseException as e:
            out.fail("%r.close() after the calls raised %r" % (obj, e))
    ctx.close(out)
    out.check()
    return out.counts


# ---------------------------------------------------------------- operations on handles and multis

class World(object):
    """The objects the operations of an example act on: one multi, some
    handles (index into ``handles``; None once dropped), one share, one
    Buffer, and the socket/timer state of a socket_action driver."""

    def __init__(self, config, out):
        self.config = config
        self.out = out
        self.m = pycurl.CurlMulti()
        self.share = pycurl.CurlShare()
        self.buffer = pycurl.Buffer()
        self.handles = []
        self.extra = []           # handles made by operations (closed at the end)
        self.sockets = {}         # fd -> libcurl's POLL_* wish (socket driver)
        self.timer = [None]       # the timeout libcurl asked for, in ms
        self.lock = threading.Lock()

    def new_handle(self, path, sink=None):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, self.url(path))
        c.setopt(pycurl.WRITEFUNCTION, sink if sink is not None else _func_none)
        c.setopt(pycurl.TIMEOUT_MS, 20000)   # a transfer paused for good still ends
        return c

    def url(self, path):
        server, _, path = path.partition(":")
        return self.config[server] + path

    def handle(self, i):
        with self.lock:
            if not self.handles:
                return None
            return self.handles[i % len(self.handles)]

    def all_handles(self):
        with self.lock:
            return [c for c in self.handles + self.extra if c is not None]

    def socket_cb(self, what, fd, multi, socketp):
        with self.lock:
            if what == pycurl.POLL_REMOVE:
                self.sockets.pop(fd, None)
            else:
                self.sockets[fd] = what

    def timer_cb(self, timeout_ms):
        self.timer[0] = timeout_ms

    def unpause_all(self):
        """Resume every transfer (paused ones never end by themselves)."""
        for c in self.all_handles():
            if not c.closed:
                self.out.call("driver unpause", c.pause, pycurl.PAUSE_CONT)


def run_op(world, op, where, me=None):
    """One operation of an example on the world; ``me`` is the Curl whose
    callback runs it (None: from a thread's top level)."""
    out = world.out
    m = world.m
    name, i = op[0], op[1]
    arg = op[2] if len(op) > 2 else None
    c = world.handle(i) if i != "me" else me
    if i == "me":
        i = 0       # for the operations that take an index
    what = "%s %s" % (where, name)
    if name == "close":
        if c is not None:
            out.call(what, c.close)
    elif name == "remove":
        if c is not None:
            out.call(what, m.remove_handle, c)
    elif name == "add":
        if c is not None:
            out.call(what, m.add_handle, c)
    elif name == "add_new":
        n = world.new_handle(arg)
        with world.lock:
            world.extra.append(n)
        out.call(what, m.add_handle, n)
    elif name == "pause":
        if c is not None:
            out.call(what, c.pause, arg)
    elif name == "getinfo":
        if c is not None:
            out.call(what, c.getinfo, arg)
    elif name == "setopt_url":
        if c is not None:
            out.call(what, c.setopt, pycurl.URL, world.url(arg))
    elif name == "setopt_write":
        if c is not None:
            out.call(what, c.setopt, pycurl.WRITEFUNCTION, _func_none)
    elif name == "setopt_sink":
        if c is not None:
            out.call(what, c.setopt, pycurl.WRITEDATA, world.buffer)
    elif name == "setopt_share":
        if c is not None:
            out.call(what, c.setopt, pycurl.SHARE, world.share)
    elif name == "unsetopt_write":
        if c is not None:
            out.call(what, c.unsetopt, pycurl.WRITEFUNCTION)
    elif name == "reset":
        if c is not None:
            out.call(what, c.reset)
    elif name == "duphandle":
        if c is not None:
            d = out.call(what, c.duphandle)
            if d is not None:
                with world.lock:
                    world.extra.append(d)
    elif name == "easy_perform":
        if c is not None:
            out.call(what, c.perform)
    elif name == "drop":
        # del + gc: forget the example's reference to the handle.
        with world.lock:
            if world.handles:
                world.handles[i % len(world.handles)] = None
        c = None
        gc.collect()
    elif name == "perform":
        out.call(what, m.perform)
    elif name == "socket_action":
        out.call(what, m.socket_action, pycurl.SOCKET_TIMEOUT, 0)
    elif name == "socket_all":
        out.call(what, m.socket_all)
    elif name == "info_read":
        out.call(what, m.info_read)
    elif name == "select":
        out.call(what, m.select, 0.0)
    elif name == "poll":
        out.call(what, m.poll, arg)
    elif name == "wait":
        out.call(what, m.wait, arg)
    elif name == "wakeup":
        out.call(what, m.wakeup)
    elif name == "timeout":
        out.call(what, m.timeout)
    elif name == "fdset":
        out.call(what, m.fdset)
    elif name == "assign":
        with world.lock:
            fds = list(world.sockets)
        out.call(what, m.assign, fds[i % len(fds)] if fds else 3, object())
    elif name == "unassign":
        with world.lock:
            fds = list(world.sockets)
        out.call(what, m.unassign, fds[i % len(fds)] if fds else 3)
    elif name == "msetopt":
        out.call(what, m.setopt, pycurl.M_MAXCONNECTS, arg)
    elif name == "mclose":
        out.call(what, m.close)
    elif name == "buffer_take":
        view = out.call(what, world.buffer.take)
        if view is not None:
            world.pieces.append(bytes(view))
    elif name == "buffer_clear":
        out.call(what, world.buffer.clear)
        world.cleared = True
    elif name == "buffer_read":
        out.call(what, world.buffer.getvalue)
        out.call(what, len, world.buffer)
    elif name == "share_close":
        out.call(what, world.share.close)
    elif name == "gc":
        gc.collect()
    elif name == "raise":
        raise ValueError("raised on purpose by the example")
    else:
        raise AssertionError("unknown op %r" % (op,))


def finish_world(world, what):
    """Checks once every thread of the example has stopped: handles
    consistent and closable, the multi usable and closable, a new transfer works."""
    out, m = world.out, world.m
    handles = world.all_handles()
    if not m.closed:
        for c in handles:
            if c in m:
                out.call("final remove_handle", m.remove_handle, c)
        if not m.closed and not out.failures:
            check_multi_usable(m, out, world.config, what)
    check_handles(m, handles, out, what)
    close_multi(m, out, what)
    try:
        world.share.close()
    except BaseException as e:
        out.fail("%s: CurlShare.close() raised %r" % (what, e))
    check_easy_usable(out, world.config, what)


_PATTERN = bytes(range(256)) * 4097


def _pattern(start, n):
    out = b""
    while len(out) < n:
        out += _PATTERN[start:start + n - len(out)]
        start = 0
    return out


def _not_runs(p):
    """None if p is runs of the pattern body (a Buffer appends body after
    body, so a run may start again at byte 0), else the first bad offset."""
    i = 0
    while i < len(p):
        a, b = p[i:], _pattern(p[i], len(p) - i)
        if a == b:
            return None
        lo, hi = 0, len(a)              # a[:lo] == b[:lo], a[:hi] != b[:hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if a[lo:mid] == b[lo:mid]:
                lo = mid
            else:
                hi = mid
        if a[lo] != 0:
            return i + lo
        i += lo
    return None


def _urls(obj):
    if isinstance(obj, str):
        if obj.startswith(("fast:", "httpbin:")):
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _urls(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _urls(v)


def pattern_bodies_only(example):
    """Whether every URL the example may fetch serves the pattern body (a
    race may let any of them win: /get or /stream bodies are JSON)."""
    return all(url.startswith("fast:") and "/bytes/" in url for url in _urls(example))


def check_pieces(world, total):
    """Every piece a Buffer gave is a contiguous run of the pattern body
    (byte i is i % 256): nothing torn, nothing from freed memory."""
    pieces = world.pieces + [world.buffer.getvalue()]
    got = 0
    for p in pieces:
        bad = _not_runs(p)
        if bad is not None:
            world.out.fail("the Buffer holds bytes that are not runs of the body: byte %d of a piece "
                           "of %d is %d after %d" % (bad, len(p), p[bad], p[bad - 1]))
        got += len(p)
    if got > total * 4:
        world.out.fail("the Buffer holds %d bytes for bodies of %d" % (got, total))


# ---------------------------------------------------------------- property: operations from inside callbacks

def prop_callbacks(example, config):
    """Operations issued from inside write/header/xferinfo/socket/timer
    callbacks while a driver runs the transfers: allowed exceptions only, no
    hang, and afterwards every object consistent and usable."""
    out = Outcomes()
    world = World(config, out)
    world.pieces, world.cleared, world.paused = [], False, False
    driver = example["driver"]
    calls = collections.Counter()
    actions = collections.defaultdict(list)
    for kind, k, op in example["actions"]:
        actions[(kind, k)].append(op)

    def fire(kind, me):
        calls[kind] += 1
        for op in actions.get((kind, calls[kind]), ()):
            if op[0] == "pause":
                world.paused = True
            if op[0] == "raise":
                run_op(world, op, "in %s callback" % kind, me)   # raises on purpose
                continue
            try:
                run_op(world, op, "in %s callback" % kind, me)
            except BaseException as e:
                # (run_op checks the library's exceptions itself: this one is
                # the harness's, and must not make the callback raise.)
                out.fail("%r in the %s callback raised %r\n%s" % (op, kind, e, traceback.format_exc()))

    def easy_callbacks(c):
        def write(data):
            fire("write", c)

        def header(line):
            fire("header", c)

        def xferinfo(*a):
            fire("xferinfo", c)
            if driver == "easy" and world.paused:
                # Curl.perform() has no other way out of a pause than a
                # callback of its own: resume, as a program would.
                world.paused = False
                out.call("unpause in xferinfo", c.pause, pycurl.PAUSE_CONT)
        c.setopt(pycurl.WRITEFUNCTION, write)
        c.setopt(pycurl.HEADERFUNCTION, header)
        c.setopt(pycurl.NOPROGRESS, 0)
        c.setopt(pycurl.XFERINFOFUNCTION, xferinfo)

    for path in example["paths"]:
        c = world.new_handle(path)
        easy_callbacks(c)
        world.handles.append(c)

    def socket_cb(what, fd, multi, socketp):
        world.socket_cb(what, fd, multi, socketp)
        fire("socket", None)

    def timer_cb(timeout_ms):
        world.timer_cb(timeout_ms)
        fire("timer", None)

    m = world.m
    m.setopt(pycurl.M_SOCKETFUNCTION, socket_cb)
    m.setopt(pycurl.M_TIMERFUNCTION, timer_cb)
    try:
        if driver == "easy":
            for c in list(world.handles):
                if c is not None:
                    out.call("easy perform", c.perform)
        else:
            for c in list(world.handles):
                if c is not None:
                    out.call("add_handle", m.add_handle, c)
            if driver == "multi":
                drive(m, out, "driver", rounds=300, on_idle=world.unpause_all)
            else:
                drive_sockets(world, rounds=300, on_idle=world.unpause_all)
    finally:
        m.setopt(pycurl.M_SOCKETFUNCTION, None) if not m.closed else None
        m.setopt(pycurl.M_TIMERFUNCTION, None) if not m.closed else None
    finish_world(world, "after the callbacks")
    out.check()
    return out.counts


def drive_sockets(world, rounds, stop=None, on_idle=None):
    """A socket_action loop on select.poll, as an event loop would run it."""
    m, out = world.m, world.out
    r = out.call("driver socket_action", m.socket_action, pycurl.SOCKET_TIMEOUT, 0)
    if r is None and m.closed:
        return
    for _ in range(rounds):
        if stop is None and r is not None and r[1] == 0:
            out.call("driver info_read", m.info_read)
            return
        if stop is not None and stop.is_set():
            return
        with world.lock:
            wishes = dict(world.sockets)
        poller = select.poll()
        for fd, what in wishes.items():
            mask = (select.POLLIN if what & pycurl.POLL_IN else 0) | \
                   (select.POLLOUT if what & pycurl.POLL_OUT else 0)
            try:
                poller.register(fd, mask)
            except (OSError, ValueError):
                pass
        timeout = world.timer[0]
        timeout = 50 if timeout is None or timeout < 0 else min(timeout, 50)
        ready = poller.poll(timeout)
        if not ready:
            r = out.call("driver socket_action", m.socket_action, pycurl.SOCKET_TIMEOUT, 0)
            if on_idle is not None:
                on_idle()
        for fd, ev in ready:
            bits = (pycurl.CSELECT_IN if ev & (select.POLLIN | select.POLLHUP) else 0) | \
                   (pycurl.CSELECT_OUT if ev & select.POLLOUT else 0) | \
                   (pycurl.CSELECT_ERR if ev & (select.POLLERR | select.POLLNVAL) else 0)
            r = out.call("driver socket_action", m.socket_action, fd, bits)
            if r is None and m.closed:
                return
        if m.closed:
            return
        out.call("driver info_read", m.info_read)


# ---------------------------------------------------------------- property: threads on one Curl

def prop_easy_threads(example, config):
    """Thread A runs perform() on one Curl; other threads call its methods at
    the same time.  Allowed exceptions only, no crash or hang, perform()
    never runs on a freed handle, and the handle stays consistent."""
    out = Outcomes()
    old = fast_switching()
    try:
        for _ in range(example["repeat"]):
            easy_threads_once(example, config, out)
            if out.failures:
                break
    finally:
        sys.setswitchinterval(old)
    out.check()
    return out.counts


def easy_threads_once(example, config, out):
    world = World(config, out)
    world.pieces, world.cleared = [], False
    size = example["size"]
    sync = example["sync"]
    c = world.new_handle("fast:/bytes/%d" % size)
    world.handles.append(c)
    if example["sink"]:
        c.setopt(pycurl.WRITEDATA, world.buffer)
    start = threading.Barrier(1 + len(example["others"]), timeout=JOIN_TIMEOUT)
    in_perform = threading.Event()     # A is inside perform() (or done with it)
    others_done = threading.Event()
    a_done = threading.Event()
    results = []

    def on_progress(*a):
        if not in_perform.is_set():
            in_perform.set()
            if sync == "hold":
                others_done.wait(JOIN_TIMEOUT)   # the others act while A sits in a callback

    if sync != "start":
        c.setopt(pycurl.NOPROGRESS, 0)
        c.setopt(pycurl.XFERINFOFUNCTION, on_progress)

    def thread_a():
        try:
            if sync == "start":
                start.wait()
            for _ in range(example["performs"]):
                try:
                    c.perform()
                    results.append("ok")
                except pycurl.error as e:
                    results.append(e.args[0])
                    out.check_error("A perform", e)
                    cause = e.__cause__
                    if cause is not None and not isinstance(cause, ALLOWED + (ValueError,)):
                        out.fail("A perform: callback raised %r" % (cause,))
                except BaseException as e:
                    out.fail("A perform raised %r\n%s" % (e, traceback.format_exc()))
        finally:
            a_done.set()
            in_perform.set()

    def thread_b(ops, who):
        if sync == "start":
            start.wait()
        else:
            in_perform.wait(JOIN_TIMEOUT)
        try:
            for op in ops:
                if in_perform.is_set() and not a_done.is_set():
                    out.count("ops while A is inside perform")
                run_op(world, op, who)
        finally:
            # Leave nothing paused for good: A's transfer must end.
            out.call(who + " final unpause", c.pause, pycurl.PAUSE_CONT)

    threads = [threading.Thread(target=thread_a, name="A-perform")]
    for n, ops in enumerate(example["others"]):
        threads.append(threading.Thread(target=thread_b, args=(ops, "B%d" % n), name="B%d" % n))
    for t in threads:
        t.start()
    try:
        join(threads[1:], out, "the other threads")
    finally:
        others_done.set()
    join(threads[:1], out, "thread A (perform)")
    for r in results:
        # 43/2: libcurl saw an invalid (freed) handle; perform() ran on a Curl
        # another thread closed meanwhile.
        if r in (pycurl.E_BAD_FUNCTION_ARGUMENT, pycurl.E_FAILED_INIT):
            out.fail("perform() ended with libcurl error %d: it ran on a handle freed by another thread"
                     " (results %r)" % (r, results))
    out.count("A results " + ",".join(sorted(set(str(r) for r in results))))
    if example["sink"] and not world.cleared and pattern_bodies_only(example):
        # Another thread's setopt(URL) may win the race and change the body.
        sizes = [size] + [int(op[2].rsplit("/", 1)[1]) for ops in example["others"] for op in ops
                          if op[0] == "setopt_url" and "/bytes/" in op[2]]
        check_pieces(world, max(sizes) * example["performs"])
    finish_world(world, "after the threads")


# ---------------------------------------------------------------- property: threads on one CurlMulti

def prop_multi_threads(example, config):
    """Thread A drives one CurlMulti (perform/select, socket_action, or
    poll); other threads add, remove, close, pause, poll, wake it up, close
    it...  Allowed exceptions only, no crash or hang, and afterwards the
    multi and its handles consistent and usable."""
    out = Outcomes()
    old = fast_switching()
    try:
        for _ in range(example["repeat"]):
            multi_threads_once(example, config, out)
            if out.failures:
                break
    finally:
        sys.setswitchinterval(old)
    out.check()
    return out.counts


def multi_threads_once(example, config, out):
    world = World(config, out)
    world.pieces, world.cleared = [], False
    m = world.m
    driver = example["driver"]
    for n, path in enumerate(example["paths"]):
        c = world.new_handle(path)
        if example["sink"] and n == 0:
            c.setopt(pycurl.WRITEDATA, world.buffer)
        world.handles.append(c)
        m.add_handle(c)
    if driver == "sockets":
        m.setopt(pycurl.M_SOCKETFUNCTION, world.socket_cb)
        m.setopt(pycurl.M_TIMERFUNCTION, world.timer_cb)
    start = threading.Barrier(1 + len(example["others"]), timeout=JOIN_TIMEOUT)
    stop = threading.Event()

    def thread_a():
        start.wait()
        if driver == "sockets":
            drive_sockets(world, rounds=100000, stop=stop)
            return
        while not stop.is_set():
            if out.call("A perform", m.perform) is None and m.closed:
                return
            out.call("A info_read", m.info_read)
            if driver == "poll":
                r = out.call("A poll", m.poll, 20)
            elif driver == "wait":
                r = out.call("A wait", m.wait, 20)
            else:
                r = out.call("A select", m.select, 0.02)
            if r is None and m.closed:
                return

    def thread_b(ops, who):
        start.wait()
        try:
            for op in ops:
                run_op(world, op, who)
        finally:
            for c in world.all_handles():
                out.call(who + " final unpause", c.pause, pycurl.PAUSE_CONT)

    threads = [threading.Thread(target=thread_a, name="A-driver")]
    for n, ops in enumerate(example["others"]):
        threads.append(threading.Thread(target=thread_b, args=(ops, "B%d" % n), name="B%d" % n))
    for t in threads:
        t.start()
    try:
        join(threads[1:], out, "the other threads")
    finally:
        stop.set()
        if not m.closed:
            out.call("wake the driver", m.wakeup)
    join(threads[:1], out, "thread A (driver)")
    if driver == "sockets" and not m.closed:
        m.setopt(pycurl.M_SOCKETFUNCTION, None)
        m.setopt(pycurl.M_TIMERFUNCTION, None)
    if example["sink"] and not world.cleared and pattern_bodies_only(example):
        check_pieces(world, 1 << 20)
    finish_world(world, "after the threads")


PROPERTIES = {
    "curl_api": prop_curl_api,
    "multi_share_api": prop_multi_share_api,
    "callbacks": prop_callbacks,
    "easy_threads": prop_easy_threads,
    "multi_threads": prop_multi_threads,
}


# ---------------------------------------------------------------- the loop

def run_one(prop, example, config):
    try:
        counts = PROPERTIES[prop](example, config)
        return ("ok", dict(counts))
    except PropertyFailed as e:
        return ("fail", str(e))
    except BaseException as e:
        return ("fail", "the example raised %s: %r\n%s" % (type(e).__name__, e, traceback.format_exc()))


def _read_exact(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(fd, obj):
    data = pickle.dumps(obj, protocol=2)
    os.write(fd, struct.pack(">I", len(data)) + data)


def main():
    faulthandler.enable(all_threads=True)
    if sys.argv[1:2] == ["--one"]:
        import ast
        prop, example, fast, httpbin = sys.argv[2:6]
        print(run_one(prop, ast.literal_eval(example), {"fast": fast, "httpbin": httpbin}))
        return
    # Our own copies of the pipes; fd 1 then goes to stderr so stray
    # output (VERBOSE, prints) cannot corrupt the protocol.
    rfd, wfd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _send(wfd, ("hello", {"curlmulti": os.path.abspath(pycurl.__file__), "pid": os.getpid()}))
    while True:
        head = _read_exact(rfd, 4)
        if head is None:
            return
        prop, example, config = pickle.loads(_read_exact(rfd, struct.unpack(">I", head)[0]))
        sys.stderr.write("=== %s %r\n" % (prop, example))
        sys.stderr.flush()
        t0 = time.monotonic()
        reply = run_one(prop, example, config)
        _send(wfd, reply + (time.monotonic() - t0,))


if __name__ == "__main__":
    main()
