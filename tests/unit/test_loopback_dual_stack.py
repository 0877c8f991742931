"""A ``localhost`` redirect URI is received on both loopback families (issue 10): a browser may resolve
``localhost`` to ::1 first, and [::1] on the same port must not be left for another local user."""

from __future__ import annotations

import socket

import pytest
import requests

from flyteauth_jupyter.control import Waiter
from flyteauth_jupyter.errors import ConfigurationError
from flyteauth_jupyter.transport.loopback import LoopbackReceiver

STATE = "state-dual"
CODE = "CODE-secret-dual"


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")


def free_port_on_both() -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET) as v4:
            v4.bind(("127.0.0.1", 0))
            port = v4.getsockname()[1]
            with socket.socket(socket.AF_INET6) as v6:
                try:
                    v6.bind(("::1", port))
                except OSError:
                    continue
        return port
    raise AssertionError("no port free on both families")


@pytest.fixture
def http():
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


def test_localhost_is_received_on_ipv6_loopback_too(http):
    port = free_port_on_both()
    with LoopbackReceiver(f"http://localhost:{port}/callback", state=STATE) as rx:
        assert rx.redirect_uri == f"http://localhost:{port}/callback"
        with socket.socket(socket.AF_INET6) as intruder:  # another local user tries to take [::1]
            with pytest.raises(OSError):
                intruder.bind(("::1", port))
        http.get(f"http://[::1]:{port}/callback", params={"code": CODE, "state": STATE}, timeout=5)
        assert rx.wait(Waiter(5)).code == CODE
    with socket.socket(socket.AF_INET6) as after:  # released on close (a closed connection may linger in TIME_WAIT)
        after.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        after.bind(("::1", port))


def test_localhost_is_refused_when_ipv6_loopback_port_is_taken():
    port = free_port_on_both()
    squatter = socket.socket(socket.AF_INET6)
    try:
        squatter.bind(("::1", port))
        squatter.listen(1)
        with pytest.raises(ConfigurationError) as info:
            LoopbackReceiver(f"http://localhost:{port}/callback", state=STATE).start()
        assert f"Port {port} on [::1]" in str(info.value)
        with socket.socket(socket.AF_INET) as v4:  # the IPv4 half was released again
            v4.bind(("127.0.0.1", port))
    finally:
        squatter.close()


def test_localhost_without_a_port_finds_one_free_on_both():
    with LoopbackReceiver("http://localhost/callback", state=STATE) as rx:
        assert rx.port and rx.redirect_uri == f"http://localhost:{rx.port}/callback"
        with socket.socket(socket.AF_INET6) as intruder:
            with pytest.raises(OSError):
                intruder.bind(("::1", rx.port))


def test_an_ip_literal_binds_only_its_own_family():
    port = free_port_on_both()
    with LoopbackReceiver(f"http://127.0.0.1:{port}/callback", state=STATE):
        with socket.socket(socket.AF_INET6) as other:
            other.bind(("::1", port))  # not ours to hold: the URI names 127.0.0.1
