"""Misbehaving servers on real sockets (127.0.0.1, ephemeral ports) for the fault suite.

``FaultServer`` accepts TCP connections and hands each parsed request to its current ``behaviour``
(settable at any time, so a test removes the fault and tries again). Behaviours (functions of
``(server, conn, request)``):

- ``relay(port)``: forward to the real server on 127.0.0.1:port (tests/idp, the FlyteAdmin stand-in);
  the fault-free case.
- ``hang``: read the request, never answer (until the server stops).
- ``respond(status, body, ctype=..., headers=..., delay=0)``: a canned answer, ``delay`` s late.
- ``truncated(body)``: announce more bytes than are sent, then close.
- ``drip(size, every)``: a 200 whose body arrives a byte at a time.
- ``redirect_loop``: 302 to the same URL, for ever.
- ``reset``: close the connection without answering.
- ``wrong_types``: JSON of the right shape with the wrong types (numbers for strings, lists for numbers).

``pause()``/``resume()`` close and reopen the listening port (connection refused in between).

``tls=(cert, key)`` serves HTTPS with that certificate (e.g. from ``rig.netparts.make_tls_material``,
whose CA the client does not trust: a self-signed certificate as far as it is concerned).
``refused_port()`` returns a port nothing listens on. Every wait is bounded by ``IO_TIMEOUT`` or the
server's stop event.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

IO_TIMEOUT = 10.0


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    raw: bytes = field(repr=False)


Behaviour = Callable[["FaultServer", socket.socket, Request], None]


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, headers, rest[:length], head + b"\r\n\r\n" + rest[:length])


def _answer(status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None,
            length: int | None = None) -> bytes:
    reason = {200: "OK", 302: "Found", 400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}",
             f"Content-Length: {len(body) if length is None else length}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class FaultServer:
    def __init__(self, behaviour: Behaviour | None = None, *, tls: tuple[str, str] | None = None) -> None:
        self.behaviour: Behaviour = behaviour or hang
        self.stopped = threading.Event()
        self.hits = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._tls = None
        if tls:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the same port again
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, args=(self._listener,), name=f"fault-{self.port}",
                                        daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop listening (connections are refused) until :meth:`resume`."""
        self._listener.close()
        self._thread.join(5)

    def resume(self) -> None:
        self._listen()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> "FaultServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass
        self._thread.join(5)

    def _serve(self, listener: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.append(conn)
        try:
            conn.settimeout(IO_TIMEOUT)
            if self._tls:
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                with self._lock:
                    self._conns.append(conn)
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.hits += 1
            self.behaviour(self, conn, request)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- behaviours
def hang(server: FaultServer, conn: socket.socket, request: Request) -> None:
    server.stopped.wait(120)


def reset(server: FaultServer, conn: socket.socket, request: Request) -> None:
    conn.close()


def respond(status: int, body: bytes | str, ctype: str = "application/json", headers: dict[str, str] | None = None,
            delay: float = 0.0) -> Behaviour:
    data = body.encode() if isinstance(body, str) else body

    def behaviour(server: FaultServer, conn: socket.socket, request: Request) -> None:
        if delay and server.stopped.wait(delay):
            return
        conn.sendall(_answer(status, data, ctype, headers))

    return behaviour


def truncated(body: bytes | str, ctype: str = "application/json") -> Behaviour:
    data = body.encode() if isinstance(body, str) else body

    def behaviour(server: FaultServer, conn: socket.socket, request: Request) -> None:
        conn.sendall(_answer(200, data, ctype, length=len(data) + 100))

    return behaviour


def drip(size: int, every: float) -> Behaviour:
    def behaviour(server: FaultServer, conn: socket.socket, request: Request) -> None:
        conn.sendall(_answer(200, b"", length=size))
        for _ in range(size):
            if server.stopped.wait(every):
                return
            conn.sendall(b" ")

    return behaviour


def redirect_loop(server: FaultServer, conn: socket.socket, request: Request) -> None:
    conn.sendall(_answer(302, b"", "text/html", {"Location": f"{server.url}{request.target}"}))


def relay(port: int) -> Behaviour:
    """Forward the request to 127.0.0.1:port and the answer back (Connection: close both ways)."""

    def behaviour(server: FaultServer, conn: socket.socket, request: Request) -> None:
        head, _, body = request.raw.partition(b"\r\n\r\n")
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith((b"connection:", b"host:"))]
        lines.insert(1, f"Host: 127.0.0.1:{port}".encode())
        lines.append(b"Connection: close")
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as upstream:
            upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                conn.sendall(chunk)

    return behaviour


def wrong_types(server: FaultServer, conn: socket.socket, request: Request) -> None:
    """JSON of the shape each endpoint answers, with the wrong types in it."""
    target = request.target
    if "flyte_client" in target:
        body = {"client_id": ["x"], "redirect_uri": 5, "scopes": "x", "authorization_metadata_key": {}}
    elif "well-known" in target:
        body = {"issuer": 1, "token_endpoint": 42, "authorization_endpoint": [], "device_authorization_endpoint": True}
    elif "device" in target and "token" not in target:
        body = {"device_code": 7, "user_code": None, "verification_uri": 3, "expires_in": "soon", "interval": []}
    else:
        body = {"access_token": 42, "token_type": ["Bearer"], "expires_in": {}, "refresh_token": 5}
    import json

    conn.sendall(_answer(200, json.dumps(body).encode()))
