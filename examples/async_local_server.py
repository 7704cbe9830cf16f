"""A tiny local HTTP/1.1 server for the async_*.py examples (standard library
only, in a thread), so they run without a network:

    /bytes/N    N bytes          /slow/N    N lines, one every 20 ms
    /echo       POST/PUT: answers the body's length and SHA-1
"""

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] == "bytes":
            n = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = b"0123456789" * 6554
            while n:
                k = min(n, len(block))
                self.wfile.write(block[:k])
                n -= k
        elif parts[0] == "slow":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(parts[1])):
                time.sleep(0.02)
                line = b"line %d\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(b"not found\n", 404)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self):
        body = self._read_body()
        self._send(b"%d %s\n" % (len(body), hashlib.sha1(body).hexdigest().encode()))

    do_PUT = do_POST


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default 5 drops connections made at once
    daemon_threads = True


def start():
    """Start the server; returns its base URL ("http://127.0.0.1:PORT")."""
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % server.server_address[1]
