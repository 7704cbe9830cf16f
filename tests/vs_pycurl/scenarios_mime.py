"""Side-by-side scenarios of CurlMime/CurlMimePart and HTTPPOST: what the
server received, lifetimes, misuse (see driver.py)."""

import io
import json
import os
import re
import tempfile


def _received(pycurl, o, key, c, url):
    """Perform c against httpbin's /anything and record what it received."""
    buf = io.BytesIO()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, buf.write)
    o.call(key + ".perform", c.perform)
    try:
        body = json.loads(buf.getvalue().decode("utf-8"))
    except ValueError:
        o[key + ".seen"] = {"not json": buf.getvalue()[:200]}
        return
    ctype = re.sub(r"boundary=\S+", "boundary=B", body.get("headers", {}).get("Content-Type", ""))
    form = {k: re.sub(r"-{4,}[0-9a-zA-Z]+", "--B", v) if isinstance(v, str) else v
            for k, v in (body.get("form") or {}).items()}
    o[key + ".seen"] = {"method": body.get("method"), "content-type": ctype, "form": form,
                        "files": body.get("files"), "data": body.get("data")}


def _file(content):
    fd, path = tempfile.mkstemp(prefix="vs-mime-", suffix=".txt")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return path


def scenario_builders(pycurl, o, servers):
    path = _file(b"file content\n")
    try:
        c = pycurl.Curl()
        m = pycurl.CurlMime(c)
        o.call("add_field", m.add_field, "name", "value")
        o.call("add_field-bytes", m.add_field, "raw", b"\x00\x01bytes")
        o.call("add_field-typed", m.add_field, "js", '{"a": 1}', content_type="application/json")
        o.call("add_file", m.add_file, "upload", path, filename="remote.txt", content_type="text/plain")
        o.call("add_file-missing", m.add_file, "missing", path + ".does-not-exist")
        o.call("add", m.add, name="generic", data=b"generic data")
        o.call("add-data-and-file", m.add, name="both", data=b"x", file=path)
        c.setopt(pycurl.MIMEPOST, m)
        _received(pycurl, o, "mime", c, servers["httpbin"] + "/anything")
        c.close()
        o.call("mime-closed-after-curl", lambda: m.closed)
        other = pycurl.CurlMime(pycurl.Curl())
        o.call("filedata-missing", other.addpart().filedata, path + ".does-not-exist")
    finally:
        os.unlink(path)


def scenario_parts(pycurl, o, servers):
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    p = m.addpart()
    o.call("name", p.name, "direct")
    o.call("data", p.data, "direct value")
    q = m.addpart()
    q.name("encoded")
    q.data(b"abc")
    o.call("encoder", q.encoder, "base64")
    o.call("bad-encoder", q.encoder, "no-such-encoding")
    o.call("type", q.type, "text/plain")
    o.call("headers", q.headers, ["X-Part: yes"])
    o.call("filename", q.filename, "q.txt")
    o.call("name-int", p.name, 5)
    o.call("data-int", p.data, 5)
    o.call("headers-str", p.headers, "X-Not-A-List: 1")
    c.setopt(pycurl.MIMEPOST, m)
    _received(pycurl, o, "parts", c, servers["httpbin"] + "/anything")
    c.close()


def scenario_data_cb(pycurl, o, servers):
    chunks = [b"from ", b"a ", b"callback"]
    calls = []

    def read(userdata, size):
        calls.append(("read", userdata))
        return chunks.pop(0) if chunks else b""

    def free(userdata):
        calls.append(("free", userdata))

    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    p = m.addpart()
    p.name("cb")
    o.call("data_cb", p.data_cb, len(b"from a callback"), read, None, free, "ud")
    c.setopt(pycurl.MIMEPOST, m)
    _received(pycurl, o, "cb", c, servers["httpbin"] + "/anything")
    o["read-userdata"] = sorted(set(u for k, u in calls if k == "read"))
    c.close()
    del m, p
    o["freed"] = [u for k, u in calls if k == "free"]

    def failing(userdata, size):
        raise ValueError("read failed")

    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    p = m.addpart()
    p.name("cb")
    p.data_cb(10, failing)
    c.setopt(pycurl.MIMEPOST, m)
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    o.call("raising-read", c.perform)
    c.close()
    o.call("not-callable", pycurl.CurlMime(pycurl.Curl()).addpart().data_cb, 10, "read")


def scenario_subparts(pycurl, o, servers):
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    m.add_field("outer", "1")
    o.call("add_multipart", m.add_multipart, "nested")
    c.setopt(pycurl.MIMEPOST, m)
    _received(pycurl, o, "nested", c, servers["httpbin"] + "/anything")
    c.close()


def scenario_httppost_vs_mimepost(pycurl, o, servers):
    path = _file(b"same file\n")
    try:
        c = pycurl.Curl()
        o.call("httppost", c.setopt, pycurl.HTTPPOST, [
            ("field", "value"),
            ("typed", (pycurl.FORM_CONTENTS, "x", pycurl.FORM_CONTENTTYPE, "text/plain")),
            ("upload", (pycurl.FORM_FILE, path, pycurl.FORM_FILENAME, "remote.txt")),
            ("buf", (pycurl.FORM_BUFFER, "buf.bin", pycurl.FORM_BUFFERPTR, b"\x00buffer")),
        ])
        _received(pycurl, o, "httppost", c, servers["httpbin"] + "/anything")
        c.close()
        c = pycurl.Curl()
        m = pycurl.CurlMime(c)
        m.add_field("field", "value")
        m.add_field("typed", "x", content_type="text/plain")
        m.add_file("upload", path, filename="remote.txt")
        p = m.addpart()
        p.name("buf")
        p.filename("buf.bin")
        p.data(b"\x00buffer")
        c.setopt(pycurl.MIMEPOST, m)
        _received(pycurl, o, "mimepost", c, servers["httpbin"] + "/anything")
        c.close()
    finally:
        os.unlink(path)
    c = pycurl.Curl()
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    o.call("httppost-missing-file.setopt", c.setopt, pycurl.HTTPPOST,
           [("f", (pycurl.FORM_FILE, path + ".does-not-exist"))])
    o.call("httppost-missing-file.perform", c.perform)
    c.close()
    c = pycurl.Curl()
    o.call("httppost-bad", c.setopt, pycurl.HTTPPOST, [("a", 5)])
    o.call("mimepost-bad", c.setopt, pycurl.MIMEPOST, "not a mime")
    o.call("mimepost-none", c.setopt, pycurl.MIMEPOST, None)
    c.close()


def scenario_lifetimes(pycurl, o, servers):
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    p = m.addpart()
    o.call("close-mime", m.close)
    o.call("closed", lambda: m.closed)
    o.call("part-after-close", p.name, "x")
    o.call("addpart-after-close", m.addpart)
    o.call("close-twice", m.close)
    c.close()
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    m.add_field("k", "v")
    c.setopt(pycurl.MIMEPOST, m)
    del m  # the Curl keeps it alive
    _received(pycurl, o, "after-del", c, servers["httpbin"] + "/anything")
    c.close()
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    c.close()
    o.call("add_field-curl-closed", m.add_field, "a", "b")
    o.call("add_multipart-curl-closed", m.add_multipart, "n")
    c = pycurl.Curl()
    o.call("no-curl", pycurl.CurlMime)
    o.call("curl-closed", lambda: pycurl.CurlMime(_closed(pycurl)))
    c.close()


def _closed(pycurl):
    c = pycurl.Curl()
    c.close()
    return c
