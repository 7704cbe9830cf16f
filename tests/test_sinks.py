"""Buffer and FileSink: bodies received by C code, with no Python call per
chunk, in the easy and the multi interface."""

import os

import pytest

import curlmulti
from curlmulti import Buffer, Curl, CurlMulti, FileSink, error

from servers import pattern


def fetch(url, **options):
    c = Curl()
    c.setopt(c.URL, url)
    for name, value in options.items():
        c.setopt(getattr(c, name), value)
    c.perform()
    return c


def test_buffer_as_writedata(big_body_server):
    sink = Buffer()
    c = fetch(big_body_server(300000), WRITEDATA=sink)
    assert c.getinfo(c.RESPONSE_CODE) == 200
    assert len(sink) == 300000
    assert sink.getvalue() == pattern(0, 300000)
    c.close()


def test_buffer_write_as_writefunction(big_body_server):
    sink = Buffer()
    c = fetch(big_body_server(5000), WRITEFUNCTION=sink.write)
    assert sink.getvalue() == pattern(0, 5000)
    c.close()


def test_buffer_without_content_length(httpbin):
    """A chunked body: no size to reserve, the buffer grows."""
    sink = Buffer()
    c = fetch(httpbin("/stream-bytes/70000?chunk_size=1000&seed=1"), WRITEDATA=sink)
    assert c.getinfo(c.RESPONSE_CODE) == 200
    reference = Curl()
    reference.setopt(reference.URL, httpbin("/stream-bytes/70000?chunk_size=1000&seed=1"))
    assert sink.getvalue() == reference.perform_rb()
    assert len(sink) == 70000
    c.close()
    reference.close()


def test_buffer_appends_until_cleared(big_body_server):
    sink = Buffer()
    c = Curl()
    c.setopt(c.WRITEDATA, sink)
    c.setopt(c.URL, big_body_server(1000))
    c.perform()
    c.perform()
    assert sink.getvalue() == pattern(0, 1000) * 2
    sink.clear()
    assert len(sink) == 0 and sink.getvalue() == b""
    c.perform()
    assert sink.getvalue() == pattern(0, 1000)
    c.close()


def test_buffer_write_from_python():
    sink = Buffer()
    assert sink.write(b"abc") == 3
    assert sink.write(bytearray(b"de")) == 2
    assert sink.write(memoryview(b"f")) == 1
    assert sink.write(b"") == 0
    assert sink.getvalue() == b"abcdef" and len(sink) == 6
    with pytest.raises(TypeError):
        sink.write("text")


def test_take_is_a_read_only_view_and_empties_the_buffer(big_body_server):
    sink = Buffer()
    c = Curl()
    c.setopt(c.WRITEDATA, sink)
    c.setopt(c.URL, big_body_server(1 << 20))
    for _ in range(3):  # the memory of a released view is used for the next body
        c.perform()
        view = sink.take()
        assert view.readonly and len(view) == 1 << 20
        assert view == pattern(0, 1 << 20)
        assert len(sink) == 0 and sink.getvalue() == b""
        with pytest.raises(TypeError):
            view[0] = 1
        view.release()
    assert sink.take() == b"" and len(sink.take()) == 0
    c.close()


def test_a_view_outlives_the_buffer_and_the_handle(big_body_server):
    sink = Buffer()
    c = fetch(big_body_server(100000), WRITEDATA=sink)
    view = sink.take()
    c.close()
    del sink, c
    assert bytes(view) == pattern(0, 100000)


def test_file_sink_with_a_file_object(big_body_server, tmp_path):
    path = tmp_path / "body"
    with open(path, "wb") as f:
        f.write(b"head:")  # flushed by FileSink before libcurl writes
        sink = FileSink(f)
        c = fetch(big_body_server(400000), WRITEDATA=sink)
        assert c.getinfo(c.RESPONSE_CODE) == 200
        c.close()
    assert path.read_bytes() == b"head:" + pattern(0, 400000)


def test_file_sink_with_a_descriptor(big_body_server, tmp_path):
    fd = os.open(str(tmp_path / "body"), os.O_WRONLY | os.O_CREAT)
    try:
        sink = FileSink(fd)
        assert sink.write(b"x") == 1
        c = fetch(big_body_server(1000), WRITEFUNCTION=sink.write)
        c.close()
    finally:
        os.close(fd)
    assert (tmp_path / "body").read_bytes() == b"x" + pattern(0, 1000)


def test_file_sink_failure_fails_the_transfer(big_body_server, tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(b"")
    fd = os.open(str(path), os.O_RDONLY)  # write(2) fails with EBADF
    try:
        sink = FileSink(fd)
        c = Curl()
        c.setopt(c.URL, big_body_server(1000))
        c.setopt(c.WRITEDATA, sink)
        with pytest.raises(error) as ei:
            c.perform()
        assert ei.value.args[0] == curlmulti.E_WRITE_ERROR
        assert isinstance(sink.error, OSError) and sink.error.errno == 9  # EBADF
        with pytest.raises(OSError):
            sink.write(b"more")
        c.close()
    finally:
        os.close(fd)


def test_file_sink_bad_arguments():
    with pytest.raises(ValueError):
        FileSink(-1)
    with pytest.raises(TypeError):
        FileSink("not a file")
    with pytest.raises(TypeError):
        FileSink(None)


def test_a_callable_after_a_sink_takes_over(big_body_server):
    sink = Buffer()
    chunks = []
    c = Curl()
    c.setopt(c.URL, big_body_server(2000))
    c.setopt(c.WRITEDATA, sink)
    c.setopt(c.WRITEFUNCTION, chunks.append)
    c.perform()
    assert len(sink) == 0 and b"".join(chunks) == pattern(0, 2000)
    c.close()


def test_sinks_in_a_multi(big_body_server):
    sizes = [0, 1, 1000, 65536, 300001] * 4
    m = CurlMulti()
    sinks = {}
    for size in sizes:
        c = Curl()
        c.setopt(c.URL, big_body_server(size))
        sink = sinks[c] = Buffer()
        c.setopt(c.WRITEDATA, sink)
        m.add_handle(c)
    done = []
    while len(done) < len(sizes):
        m.perform()
        _, ok, failed = m.info_read()
        assert failed == []
        done += ok
        for c in ok:
            m.remove_handle(c)
        if len(done) < len(sizes):
            m.select(1.0)
    got = sorted(sinks[c].getvalue() for c in done)
    assert got == sorted(pattern(0, size) for size in sizes)
    m.close()
    for c in done:
        c.close()


def test_a_view_given_back_while_the_buffer_holds_a_body_becomes_the_spare(big_body_server):
    """The block of a dropped view comes back while the buffer already
    holds the next body: it is kept as the spare, and the body after the
    next take() is received into it (the path an AddressSanitizer run with
    a planted use-after-free showed no other test reached)."""
    import gc
    sink = Buffer()
    c = Curl()
    c.setopt(c.WRITEDATA, sink)
    c.setopt(c.URL, big_body_server(200000))
    c.perform()
    first = sink.take()
    c.perform()                          # into a new block
    del first                            # given back: the buffer has data, so it is the spare
    gc.collect()
    second = sink.take()                 # the buffer moves onto the spare
    c.perform()                          # received into the spare
    assert second == pattern(0, 200000)
    assert sink.getvalue() == pattern(0, 200000)
    third = sink.take()
    del second
    gc.collect()
    assert third == pattern(0, 200000)
    c.close()


def test_a_buffer_read_from_another_thread_during_a_transfer(big_body_server):
    """getvalue(), take() and len() from a second thread while libcurl
    writes into the buffer: the C mutex keeps every piece the next run of
    the body (nothing torn, nothing from freed memory), and together the
    pieces are the whole body."""
    import threading
    size = 8 << 20
    sink = Buffer()
    c = Curl()
    c.setopt(c.WRITEDATA, sink)
    c.setopt(c.URL, big_body_server(size))
    done = threading.Event()
    pieces = []

    def reader():
        n = 0
        while not done.is_set():
            n += 1
            if n % 3 == 0:
                pieces.append(("take", bytes(sink.take())))
            elif n % 3 == 1:
                pieces.append(("copy", sink.getvalue()))
            else:
                len(sink)

    t = threading.Thread(target=reader)
    t.start()
    try:
        c.perform()
    finally:
        done.set()
        t.join(30)
    pieces.append(("take", sink.getvalue()))
    offset = 0
    for kind, data in pieces:
        assert data == pattern(offset, len(data)), (kind, offset, len(data))
        if kind == "take":
            offset += len(data)
    assert offset == size
    c.close()
