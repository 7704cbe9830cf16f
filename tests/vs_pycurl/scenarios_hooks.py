"""Side-by-side scenarios of the newer callbacks a local server allows:
PREREQFUNCTION, RESOLVER_START_FUNCTION, TRAILERFUNCTION, and the address
OPENSOCKETFUNCTION is given (see driver.py)."""

import socket


def _transfer(pycurl, url):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    return c


def _port(url):
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


RESULTS = (("none", None), ("zero", 0), ("one", 1), ("minus-one", -1), ("str", "abc"),
           ("float", 1.5), ("huge", 1 << 70), ("raise", ValueError))


def _returning(result, seen=None):
    def callback(*args):
        if seen is not None:
            seen.append(args)
        if result is ValueError:
            raise ValueError("from the callback")
        return result
    return callback


def scenario_prereq_arguments(pycurl, o, servers):
    seen = []
    c = _transfer(pycurl, servers["fast"] + "/bytes/10")
    o.call("setopt", c.setopt, pycurl.PREREQFUNCTION, _returning(pycurl.PREREQFUNC_OK, seen))
    o.call("perform", c.perform)
    o["calls"] = len(seen)
    primary_ip, local_ip, primary_port, local_port = seen[0]
    o["types"] = [type(a).__name__ for a in seen[0]]
    o["primary_ip"] = primary_ip
    o["local_ip"] = local_ip
    o["primary_port-is-server's"] = primary_port == _port(servers["fast"])
    o["local_port-positive"] = local_port > 0
    o["constants"] = [pycurl.PREREQFUNC_OK, pycurl.PREREQFUNC_ABORT]
    o.call("unset-none", c.setopt, pycurl.PREREQFUNCTION, None)
    o.call("unsetopt", c.unsetopt, pycurl.PREREQFUNCTION)
    o.call("not-callable", c.setopt, pycurl.PREREQFUNCTION, 5)
    c.close()


def scenario_prereq_results(pycurl, o, servers):
    for label, result in RESULTS:
        c = _transfer(pycurl, servers["fast"] + "/bytes/10")
        c.setopt(pycurl.PREREQFUNCTION, _returning(result))
        o.call(label, c.perform)
        c.close()


def scenario_resolver_start(pycurl, o, servers):
    url = servers["fast"].replace("127.0.0.1", "localhost") + "/bytes/10"
    seen = []
    c = _transfer(pycurl, url)
    o.call("setopt", c.setopt, pycurl.RESOLVER_START_FUNCTION, _returning(0, seen))
    o.call("perform", c.perform)
    o["called"] = len(seen) > 0
    o["arguments"] = sorted(set(len(a) for a in seen))
    o.call("not-callable", c.setopt, pycurl.RESOLVER_START_FUNCTION, "x")
    o.call("unset-none", c.setopt, pycurl.RESOLVER_START_FUNCTION, None)
    c.close()
    for label, result in RESULTS:
        c = _transfer(pycurl, url)
        c.setopt(pycurl.RESOLVER_START_FUNCTION, _returning(result))
        c.setopt(pycurl.DNS_CACHE_TIMEOUT, 0)
        o.call("result-" + label, c.perform)
        c.close()


def _chunked_upload(pycurl, servers, trailer):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.UPLOAD, 1)
    c.setopt(pycurl.HTTPHEADER, ["Transfer-Encoding: chunked"])
    body = [b"payload"]
    c.setopt(pycurl.READFUNCTION, lambda size: body.pop() if body else b"")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    sent = []
    c.setopt(pycurl.VERBOSE, 1)
    c.setopt(pycurl.DEBUGFUNCTION,
             lambda kind, data: sent.append(bytes(data)) if kind == pycurl.INFOTYPE_DATA_OUT else None)
    c.setopt(pycurl.TRAILERFUNCTION, trailer)
    return c, sent


TRAILER_RESULTS = (("none", None), ("list", ["X-Trailer: one", "X-Other: two"]),
                   ("tuple", ("X-Trailer: t",)), ("bytes-list", [b"X-Trailer: b"]),
                   ("empty-list", []), ("str", "X-Trailer: s"), ("int", 0), ("one", 1),
                   ("list-of-int", [5]), ("raise", ValueError))


def scenario_trailer(pycurl, o, servers):
    o["constants"] = [pycurl.TRAILERFUNC_OK, pycurl.TRAILERFUNC_ABORT]
    for label, result in TRAILER_RESULTS:
        calls = []
        c, sent = _chunked_upload(pycurl, servers, _returning(result, calls))
        o.call(label, c.perform)
        o[label + ".calls"] = calls
        o[label + ".sent"] = b"".join(sent)
        c.close()
    c = pycurl.Curl()
    o.call("not-callable", c.setopt, pycurl.TRAILERFUNCTION, 5)
    o.call("unset-none", c.setopt, pycurl.TRAILERFUNCTION, None)
    c.close()


def scenario_opensocket_address(pycurl, o, servers):
    seen = []
    keep = []

    def opensocket(purpose, address):
        seen.append((purpose, address))
        s = socket.socket(address.family, address.socktype, address.protocol)
        keep.append(s)
        return s

    c = _transfer(pycurl, servers["fast"] + "/bytes/10")
    c.setopt(pycurl.OPENSOCKETFUNCTION, opensocket)
    o.call("perform", c.perform)
    purpose, address = seen[0]
    o["purpose"] = purpose == pycurl.SOCKTYPE_IPCXN
    o["type"] = type(address).__name__
    o["fields"] = list(getattr(address, "_fields", ()))
    o["is-tuple"] = isinstance(address, tuple)
    o["family"] = address.family == socket.AF_INET
    o["socktype"] = address.socktype == socket.SOCK_STREAM
    o["protocol"] = address.protocol
    o["addr"] = [address.addr[0], address.addr[1] == _port(servers["fast"])]
    o["index"] = [address[0] == address.family, len(address)]
    c.close()
    for s in keep:
        s.detach()  # the library owns (a duplicate of) the descriptor now


OPENSOCKET_RESULTS = (("none", None), ("minus-one", -1), ("str", "abc"), ("raise", ValueError),
                      ("socket-object", "SOCKET"), ("fileno-object", "FILENO"),
                      ("int-descriptor", "INT"))


def scenario_opensocket_results(pycurl, o, servers):
    keep = []

    class HasFileno(object):
        def __init__(self, s):
            self.s = s

        def fileno(self):
            return self.s.fileno()

    for label, result in OPENSOCKET_RESULTS:
        def opensocket(purpose, address, result=result):
            if result in ("SOCKET", "FILENO", "INT"):
                s = socket.socket(address.family, address.socktype, address.protocol)
                keep.append(s)
                return {"SOCKET": s, "FILENO": HasFileno(s), "INT": s.fileno()}[result]
            if result is ValueError:
                raise ValueError("from the callback")
            return result

        c = _transfer(pycurl, servers["fast"] + "/bytes/10")
        c.setopt(pycurl.OPENSOCKETFUNCTION, opensocket)
        o.call(label, c.perform)
        c.close()
    for s in keep:
        s.detach()  # the library owns (a duplicate of) the descriptor now
