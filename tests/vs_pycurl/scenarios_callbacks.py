"""Side-by-side scenarios of the easy callbacks: what each is given, what
its results mean, and what an exception in it does (see driver.py).

A callback exception shows as ``callback`` in the outcome: the type of the
error's ``__cause__`` (curlmulti), or of the exception pycurl printed."""

import io


def _body_transfer(pycurl, servers, size=100):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, servers["fast"] + "/bytes/%d" % size)
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    return c


WRITE_RESULTS = (("none", None), ("all", "ALL"), ("zero", 0), ("short", 5), ("minus-one", -1),
                 ("str", "abc"), ("float", 1.5), ("bytes", b"x"), ("true", True), ("huge", 1 << 40),
                 ("too-huge", 1 << 70), ("pause", "PAUSE"))


def scenario_write_results(pycurl, o, servers):
    for label, result in WRITE_RESULTS:
        c = _body_transfer(pycurl, servers)

        def write(data, result=result):
            if result == "ALL":
                return len(data)
            if result == "PAUSE":
                return pycurl.WRITEFUNC_PAUSE if hasattr(pycurl, "WRITEFUNC_PAUSE") else 0x10000001
            return result

        c.setopt(pycurl.WRITEFUNCTION, write)
        if label == "pause":
            c.setopt(pycurl.TIMEOUT_MS, 300)  # a paused easy transfer waits for ever otherwise
        if label == "pause":
            o.call(label, lambda: _code_of(pycurl, c.perform))  # the message has a time in it
        else:
            o.call(label, c.perform)
        c.close()


def _code_of(pycurl, func):
    try:
        func()
    except pycurl.error as e:
        return e.args[0]
    return "no error"


def scenario_header_results(pycurl, o, servers):
    for label, result in WRITE_RESULTS[:-1]:
        c = _body_transfer(pycurl, servers)
        c.setopt(pycurl.HEADERFUNCTION,
                 lambda data, result=result: len(data) if result == "ALL" else result)
        o.call(label, c.perform)
        c.close()


def scenario_write_arguments(pycurl, o, servers):
    c = _body_transfer(pycurl, servers, 10)
    seen = []
    c.setopt(pycurl.WRITEFUNCTION, lambda data: seen.append(type(data).__name__))
    c.perform()
    o["type"] = sorted(set(seen))
    seen.clear()
    o.call("use_memoryview", c.setopt, pycurl.WRITEFUNCTION,
           lambda data: seen.append(type(data).__name__), use_memoryview=True)
    c.perform()
    o["view-type"] = sorted(set(seen))
    o.call("use_memoryview-on-URL", c.setopt, pycurl.URL, "x", use_memoryview=True)
    c.close()


READ_RESULTS = (("bytes", b"abc"), ("str", "abc"), ("empty", b""), ("none", None), ("int", 7),
                ("abort", "ABORT"), ("too-long", b"x" * 100000), ("float", 1.5), ("non-ascii", "\u00e9"))


def scenario_read_results(pycurl, o, servers):
    for label, result in READ_RESULTS:
        c = pycurl.Curl()
        c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
        c.setopt(pycurl.UPLOAD, 1)
        c.setopt(pycurl.INFILESIZE, 3)
        c.setopt(pycurl.TIMEOUT_MS, 2000)
        buf = io.BytesIO()
        c.setopt(pycurl.WRITEFUNCTION, buf.write)
        state = []

        def read(size, result=result, state=state):
            if state:
                return b""
            state.append(size)
            return pycurl.READFUNC_ABORT if result == "ABORT" else result

        c.setopt(pycurl.READFUNCTION, read)
        o.call(label, c.perform)
        o[label + ".code"] = c.getinfo(pycurl.RESPONSE_CODE)
        c.close()


PROGRESS_RESULTS = (("none", None), ("zero", 0), ("false", False), ("empty-str", ""), ("true", True),
                    ("five", 5), ("minus-one", -1), ("str", "stop"), ("huge", 1 << 32),
                    ("continue", "CONTINUE"))


def scenario_xferinfo_results(pycurl, o, servers):
    for name in ("XFERINFOFUNCTION", "PROGRESSFUNCTION"):
        for label, result in PROGRESS_RESULTS:
            c = _body_transfer(pycurl, servers)
            c.setopt(pycurl.NOPROGRESS, 0)
            value = 0x10000001 if result == "CONTINUE" else result  # CURL_PROGRESSFUNC_CONTINUE
            c.setopt(getattr(pycurl, name), lambda *args, value=value: value)
            o.call("%s.%s" % (name, label), c.perform)
            c.close()


def scenario_xferinfo_arguments(pycurl, o, servers):
    c = _body_transfer(pycurl, servers, 1000)
    c.setopt(pycurl.NOPROGRESS, 0)
    seen = []
    c.setopt(pycurl.XFERINFOFUNCTION, lambda *args: seen.append(args))
    c.perform()
    o["arity"] = sorted({len(a) for a in seen})
    o["types"] = sorted({type(v).__name__ for a in seen for v in a})
    o["final-download"] = max(a[1] for a in seen)
    c.close()


def scenario_debug(pycurl, o, servers):
    c = _body_transfer(pycurl, servers)
    c.setopt(pycurl.VERBOSE, 1)
    kinds = set()
    c.setopt(pycurl.DEBUGFUNCTION, lambda kind, data: kinds.add((kind, type(data).__name__)))
    o.call("perform", c.perform)
    o["kinds"] = sorted(kinds)
    c.setopt(pycurl.DEBUGFUNCTION, lambda kind, data: 1)
    o.call("returns-1", c.perform)
    c.close()


def scenario_sockopt_results(pycurl, o, servers):
    for label, result in (("none", None), ("ok", 0), ("error", 1), ("already", 2), ("str", "x"),
                          ("huge", 1 << 32)):
        c = _body_transfer(pycurl, servers)
        c.setopt(pycurl.FORBID_REUSE, 1)
        c.setopt(pycurl.SOCKOPTFUNCTION, lambda fd, purpose, result=result: result)
        o.call(label, c.perform)
        c.close()


def scenario_seek_results(pycurl, o, servers):
    """A 307 on a PUT makes libcurl rewind the upload: the seek callback."""
    for label, result in (("none", None), ("ok", 0), ("fail", 1), ("cantseek", 2), ("bad", 5),
                          ("str", "x"), ("huge", 1 << 32)):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, servers["httpbin"] + "/redirect-to?url=/anything&status_code=307")
        c.setopt(pycurl.FOLLOWLOCATION, 1)
        c.setopt(pycurl.UPLOAD, 1)
        data = io.BytesIO(b"x" * 10)
        c.setopt(pycurl.READFUNCTION, data.read)
        c.setopt(pycurl.INFILESIZE, 10)
        c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
        c.setopt(pycurl.SEEKFUNCTION, lambda offset, origin, data=data, result=result: (
            data.seek(offset, origin), result)[1])
        o.call(label, c.perform)
        c.close()


CALLBACK_SETUPS = {
    "WRITEFUNCTION": lambda pycurl, c: None,
    "HEADERFUNCTION": lambda pycurl, c: None,
    "XFERINFOFUNCTION": lambda pycurl, c: c.setopt(pycurl.NOPROGRESS, 0),
    "PROGRESSFUNCTION": lambda pycurl, c: c.setopt(pycurl.NOPROGRESS, 0),
    "DEBUGFUNCTION": lambda pycurl, c: c.setopt(pycurl.VERBOSE, 1),
    "SOCKOPTFUNCTION": lambda pycurl, c: c.setopt(pycurl.FORBID_REUSE, 1),
}


def _raising(pycurl, servers, name, exc, counter, body):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, servers["fast"] + "/bytes/100000")
    c.setopt(pycurl.WRITEFUNCTION, body.append)
    CALLBACK_SETUPS[name](pycurl, c)

    def callback(*args):
        counter.append(1)
        raise exc

    c.setopt(getattr(pycurl, name), callback)
    return c


def scenario_callback_exceptions(pycurl, o, servers):
    for name in sorted(CALLBACK_SETUPS):
        counter, body = [], []
        c = _raising(pycurl, servers, name, ValueError("boom"), counter, body)
        o.call(name, c.perform)
        o[name + ".calls"] = len(counter) if len(counter) < 2 else "many"
        c.close()


def scenario_keyboard_interrupt(pycurl, o, servers):
    for name in sorted(CALLBACK_SETUPS):
        counter, body = [], []
        c = _raising(pycurl, servers, name, KeyboardInterrupt("stop"), counter, body)
        o.call(name, c.perform)
        o[name + ".calls"] = len(counter)
        o[name + ".body-delivered"] = sum(map(len, body)) if name != "WRITEFUNCTION" else None
        c.close()


def scenario_keyboard_interrupt_multi(pycurl, o, servers):
    for name in sorted(CALLBACK_SETUPS):
        counter, body = [], []
        c = _raising(pycurl, servers, name, KeyboardInterrupt("stop"), counter, body)
        m = pycurl.CurlMulti()
        m.add_handle(c)

        def drive():
            running, rounds = 1, 0
            while running and rounds < 10000:
                rounds += 1
                _, running = m.perform()
                if running:
                    m.select(1.0)
            return m.info_read()[1:]

        o.call(name, drive)
        o[name + ".calls"] = len(counter)
        m.close()
        c.close()
