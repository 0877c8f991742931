"""Real network parts for proxy and TLS tests: a forward proxy, a throwaway CA, an HTTPS front.

Everything listens on 127.0.0.1 and talks only to 127.0.0.1.

- ``ForwardProxy``: a threaded stdlib HTTP forward proxy. Absolute-URI requests (``GET
  http://127.0.0.1:p/x``, any method) are forwarded with ``http.client``; ``CONNECT 127.0.0.1:p``
  opens a tunnel (so HTTPS can go through it too). Targets other than 127.0.0.1 are refused with 403.
  ``.requests`` counts forwarded requests and tunnels per target ``host:port``; ``.refused`` lists
  refused targets.
- ``make_tls_material(dir)``: a throwaway CA and a server certificate for IP 127.0.0.1 (and DNS
  localhost), written as PEM files; returns their paths.
- ``TLSFront``: an HTTPS server (ssl-wrapped ThreadingHTTPServer) that relays GETs to a plain HTTP
  upstream on 127.0.0.1 (e.g. the FlyteAdmin stand-in), so the same documents are served over TLS.
  Handshake failures (a client that does not trust the CA) are recorded in ``.handshake_errors``.
"""

from __future__ import annotations

import collections
import datetime
import http.client
import ipaddress
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .background import Background

ALLOWED_HOST = "127.0.0.1"
IO_TIMEOUT = 10.0
TUNNEL_IDLE = 10.0  # a tunnel with no traffic for this long is closed
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet: tests assert on counters
        pass


# ------------------------------------------------------------------------------ forward proxy
class ForwardProxy(Background):
    """A forward HTTP proxy on 127.0.0.1 that only forwards to 127.0.0.1."""

    name = "proxy"

    def __init__(self, port: int = 0) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.methods: collections.Counter[tuple[str, str]] = collections.Counter()  # (method, host:port)
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server((ALLOWED_HOST, port), self._handler_class())
        self.url = f"http://{ALLOWED_HOST}:{self.port}"

    def count(self, target: str) -> int:
        with self._lock:
            return self.requests[target]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.methods.clear()
            self.refused.clear()

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self.requests[target] += 1
            self.methods[(method, target)] += 1

    def _refuse(self, target: str) -> None:
        with self._lock:
            self.refused.append(target)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "rig-proxy/1"
            timeout = IO_TIMEOUT

            def log_message(self, *args: object) -> None:  # never log (headers carry tokens)
                pass

            def _plain(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self) -> None:
                parts = urlsplit(self.path)
                if parts.scheme != "http" or not parts.hostname:
                    self._plain(400, "absolute http:// URI required")
                    return
                port = parts.port or 80
                target = f"{parts.hostname}:{port}"
                if parts.hostname != ALLOWED_HOST:
                    proxy._refuse(target)
                    self._plain(403, "target refused")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Connection"] = "close"
                proxy._record(self.command, target)
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                conn = http.client.HTTPConnection(parts.hostname, port, timeout=IO_TIMEOUT)
                try:
                    conn.request(self.command, path, body=body, headers=headers)
                    upstream = conn.getresponse()
                    data = upstream.read()
                    self.send_response(upstream.status, upstream.reason)
                    for k, v in upstream.getheaders():
                        if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:
                    self._plain(502, "upstream unreachable")
                finally:
                    conn.close()

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = _forward

            def do_CONNECT(self) -> None:  # noqa: N802
                host, _, port_text = self.path.rpartition(":")
                target = self.path
                if host != ALLOWED_HOST or not port_text.isdigit():
                    proxy._refuse(target)
                    self._plain(403, "target refused")
                    return
                try:
                    upstream = socket.create_connection((host, int(port_text)), timeout=IO_TIMEOUT)
                except OSError:
                    self._plain(502, "upstream unreachable")
                    return
                proxy._record("CONNECT", target)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                client = self.connection
                try:
                    pair = {client: upstream, upstream: client}
                    while True:  # bounded: ends when either side closes or after TUNNEL_IDLE s of silence
                        readable, _, _ = select.select(list(pair), [], [], TUNNEL_IDLE)
                        if not readable:
                            return
                        for sock in readable:
                            chunk = sock.recv(65536)
                            if not chunk:
                                return
                            pair[sock].sendall(chunk)
                except OSError:
                    return
                finally:
                    upstream.close()

        return Handler


# ------------------------------------------------------------------------------ TLS material
@dataclass(frozen=True)
class TLSMaterial:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_material(directory: Path) -> TLSMaterial:
    """A throwaway CA and a server certificate for 127.0.0.1 (IP SAN) and localhost, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flyteauth-jupyter test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ALLOWED_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(ALLOWED_HOST)), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    material = TLSMaterial(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    material.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    material.server_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    material.server_key.chmod(0o600)
    return material


# ------------------------------------------------------------------------------ HTTPS front
class _TLSServer(_Server):
    """Wraps each accepted connection in TLS inside the handler thread (a stuck handshake blocks no one)."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext, front: "TLSFront") -> None:
        super().__init__(address, handler)
        self.context = context
        self.front = front

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IO_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.front._handshake_failed(exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class TLSFront(Background):
    """HTTPS on 127.0.0.1 relaying GET/HEAD to ``upstream`` (``http://127.0.0.1:port``)."""

    name = "tls-front"

    def __init__(self, upstream: str, material: TLSMaterial, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname != ALLOWED_HOST or parts.scheme != "http":
            raise ValueError("TLSFront relays only to http://127.0.0.1:<port>")
        self.upstream_port = parts.port or 80
        self.requests: collections.Counter[str] = collections.Counter()
        self.handshake_errors: list[str] = []
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(material.server_cert, material.server_key)
        self._server = _TLSServer((ALLOWED_HOST, port), self._handler_class(), context, self)
        self.service = f"{ALLOWED_HOST}:{self.port}"
        self.endpoint = f"https://{self.service}"

    def _handshake_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.handshake_errors.append(f"{type(exc).__name__}: {exc}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "rig-tls-front/1"
            timeout = IO_TIMEOUT

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                with front._lock:
                    front.requests[path] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
                conn = http.client.HTTPConnection(ALLOWED_HOST, front.upstream_port, timeout=IO_TIMEOUT)
                try:
                    conn.request(self.command, self.path, headers=headers)
                    upstream = conn.getresponse()
                    data = upstream.read()
                    status, reason, up_headers = upstream.status, upstream.reason, upstream.getheaders()
                except OSError:
                    status, reason, up_headers, data = 502, "Bad Gateway", [("Content-Type", "text/plain")], b"upstream"
                finally:
                    conn.close()
                self.send_response(status, reason)
                for k, v in up_headers:
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_HEAD = do_GET

        return Handler


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ALLOWED_HOST, 0))
        return s.getsockname()[1]
