"""Side-by-side scenarios of the multi handle: lifecycles, misuse, the
perform/select loop, socket_action, info_read (see driver.py)."""


def _run(pycurl, m):
    running = 1
    while running:
        _, running = m.perform()
        if running:
            m.select(1.0)


def _easy(pycurl, url, sink=None):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, sink.append if sink is not None else (lambda data: None))
    return c


def scenario_construct(pycurl, o, servers):
    o.call("positional", pycurl.CurlMulti, True)
    o.call("unknown-keyword", pycurl.CurlMulti, bogus=1)
    m = o.call("keyword", pycurl.CurlMulti, close_handles=True)
    o["closed"] = m.closed
    m.close()
    o["closed-after"] = m.closed
    o.call("close-again", m.close)


def scenario_close_handles(pycurl, o, servers):
    for close_handles in (False, True):
        key = "close_handles=%s" % close_handles
        m = pycurl.CurlMulti(close_handles=close_handles)
        done = _easy(pycurl, servers["fast"] + "/bytes/10")
        idle = pycurl.Curl()
        m.add_handle(done)
        m.add_handle(idle)
        _run(pycurl, m)
        o.call(key + ".close", m.close)
        o[key + ".closed"] = [m.closed, done.closed, idle.closed]
        o.call(key + ".multi()", lambda: (done.multi(), idle.multi()))
        o.call(key + ".in", lambda: (done in m, idle in m))
        for c in (done, idle):
            c.close()
    with pycurl.CurlMulti(close_handles=True) as m:
        c = pycurl.Curl()
        m.add_handle(c)
    o["context-manager"] = [m.closed, c.closed]


def scenario_contains(pycurl, o, servers):
    m = pycurl.CurlMulti()
    c = pycurl.Curl()
    o.call("before", lambda: c in m)
    m.add_handle(c)
    o.call("attached", lambda: c in m)
    o.call("multi()", lambda: c.multi() is m)
    for label, value in (("int", 5), ("none", None), ("str", "c"), ("multi", m)):
        o.call("in-" + label, lambda: value in m)
    m.remove_handle(c)
    o.call("removed", lambda: c in m)
    c.close()
    o.call("closed-curl", lambda: c in m)
    m.close()


def scenario_misuse(pycurl, o, servers):
    m, other = pycurl.CurlMulti(), pycurl.CurlMulti()
    c = pycurl.Curl()
    o.call("add", m.add_handle, c)
    o.call("add-again", m.add_handle, c)
    o.call("add-to-other", other.add_handle, c)
    o.call("perform-attached", c.perform)
    o.call("setopt-attached", c.setopt, pycurl.URL, servers["fast"] + "/get")
    o.call("remove", m.remove_handle, c)
    o.call("remove-again", m.remove_handle, c)
    o.call("add-int", m.add_handle, 5)
    o.call("remove-int", m.remove_handle, None)
    closed = pycurl.Curl()
    closed.close()
    o.call("add-closed-curl", m.add_handle, closed)
    o.call("remove-closed-curl", m.remove_handle, closed)
    m.close()
    other.close()
    for method, args in (("add_handle", (pycurl.Curl(),)), ("remove_handle", (c,)), ("perform", ()),
                         ("socket_action", (pycurl.SOCKET_TIMEOUT, 0)), ("info_read", ()),
                         ("timeout", ()), ("fdset", ()), ("select", (0.01,)),
                         ("setopt", (pycurl.M_MAXCONNECTS, 1))):
        o.call("closed." + method, getattr(m, method), *args)
    c.close()


def scenario_perform_loop(pycurl, o, servers):
    m = pycurl.CurlMulti()
    bodies = {}
    handles = []
    for path in ("/bytes/10", "/bytes/20000", "/status/404"):
        sink = []
        c = _easy(pycurl, servers["fast"] + path, sink)
        bodies[path] = sink
        handles.append(c)
        m.add_handle(c)
    bad = _easy(pycurl, "http://127.0.0.1:1/")
    m.add_handle(bad)
    _run(pycurl, m)
    queued, ok, failed = m.info_read()
    o["queued"] = queued
    o["ok"] = sorted(handles.index(c) for c in ok)
    o["failed"] = [(c is bad, code, message) for c, code, message in failed]
    o["sizes"] = {path: sum(map(len, sink)) for path, sink in bodies.items()}
    o["codes"] = [c.getinfo(pycurl.RESPONSE_CODE) for c in handles]
    o.call("info_read-empty", m.info_read)
    o.call("info_read(0)", m.info_read, 0)
    o.call("info_read(str)", m.info_read, "x")
    for c in handles + [bad]:
        m.remove_handle(c)
        c.close()
    m.close()


def scenario_socket_action(pycurl, o, servers):
    m = pycurl.CurlMulti()
    events = []
    timers = []
    m.setopt(pycurl.M_SOCKETFUNCTION, lambda what, fd, multi, data: events.append(what))
    m.setopt(pycurl.M_TIMERFUNCTION, timers.append)
    c = _easy(pycurl, servers["fast"] + "/bytes/100")
    m.add_handle(c)
    o["timer-after-add"] = bool(timers)
    import select
    running = 1
    rounds = 0
    while running and rounds < 1000:
        rounds += 1
        _, running = m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        r, w, x = m.fdset()
        if running and (r or w):
            select.select(r, w, x, 1.0)
            for fd in set(r + w):
                _, running = m.socket_action(fd, 0)
    o["done"] = running == 0
    # (whether POLL_IN shows up depends on timing: only the end is compared)
    o["socket-removed"] = bool(events) and events[-1] == pycurl.POLL_REMOVE
    o["info"] = m.info_read()[1:]
    o.call("M_SOCKETFUNCTION=int", m.setopt, pycurl.M_SOCKETFUNCTION, 5)
    o.call("M_MAXCONNECTS=str", m.setopt, pycurl.M_MAXCONNECTS, "x")
    o.call("unknown-option", m.setopt, 999999, 1)
    m.remove_handle(c)
    c.close()
    m.close()
