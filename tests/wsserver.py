"""A small WebSocket server (RFC 6455) on 127.0.0.1 for the tests, on raw
sockets in a daemon thread: one thread per connection, bounded by socket
timeouts.

Paths:
  /echo   every data frame comes back with the same opcode and payload; a
          ping is answered with a pong of the same payload; a close frame
          with the same close payload, then the connection ends.
  /hello  sends a text frame "hello", then behaves as /echo.

Every frame received is recorded in ``.frames`` as (opcode, payload).
"""

import base64
import hashlib
import socket
import struct
import threading

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IO_TIMEOUT = 10.0
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


def _recv_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise EOFError("peer closed")
        out += chunk
    return out


def read_frame(conn):
    """(fin, opcode, payload) of the next frame, unmasked."""
    b0, b1 = _recv_exact(conn, 2)
    n = b1 & 0x7F
    if n == 126:
        n, = struct.unpack("!H", _recv_exact(conn, 2))
    elif n == 127:
        n, = struct.unpack("!Q", _recv_exact(conn, 8))
    mask = _recv_exact(conn, 4) if b1 & 0x80 else None
    data = _recv_exact(conn, n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return bool(b0 & 0x80), b0 & 0x0F, data


def frame(opcode, payload, fin=True):
    """A server frame (never masked)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class WsServer(object):

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "ws://%s:%d" % (host, self.port)
        self.frames = []
        self._conns = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="ws-server")
        self._thread.start()

    def owned_fds(self):
        return {self.sock.fileno(): "WsServer listening socket"}

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            with self._lock:
                if self._stopping:
                    conn.close()
                    return
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _handshake(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError("peer closed during the handshake")
            data += chunk
        lines = data.split(b"\r\n")
        path = lines[0].split()[1].decode()
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + _GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return path

    def _serve(self, conn):
        try:
            path = self._handshake(conn)
            if path == "/hello":
                conn.sendall(frame(TEXT, b"hello"))
            while True:
                fin, opcode, payload = read_frame(conn)
                with self._lock:
                    self.frames.append((opcode, payload))
                if opcode == CLOSE:
                    conn.sendall(frame(CLOSE, payload))
                    return
                if opcode == PING:
                    conn.sendall(frame(PONG, payload))
                elif opcode != PONG:
                    conn.sendall(frame(opcode, payload, fin))
        except (OSError, EOFError, KeyError, IndexError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def stop(self):
        with self._lock:
            self._stopping = True
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread is not None:
            self._thread.join(IO_TIMEOUT)
