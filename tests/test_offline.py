"""The egress guard refuses every non-loopback destination and lets loopback through."""

import os
import socket
import threading

import pytest

from privtune import offline
from privtune.errors import EgressBlocked


@pytest.fixture(autouse=True)
def _strict_guard():
    offline.install_egress_guard(strict=True)
    offline.reset_attempts()
    yield
    offline.install_egress_guard(strict=True)


def test_offline_env_is_set():
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
                "DO_NOT_TRACK"):
        assert os.environ[key] == "1", key


@pytest.mark.parametrize("dest", [("203.0.113.7", 443), ("8.8.8.8", 53), ("10.0.0.1", 80), ("192.168.1.1", 80)])
def test_connect_to_non_loopback_is_refused_and_named(dest):
    with socket.socket() as s, pytest.raises(EgressBlocked, match=rf"{dest[0]}:{dest[1]}"):
        s.connect(dest)
    assert offline.blocked_attempts() == [f"{dest[0]}:{dest[1]}"]


def test_dns_lookup_of_public_host_is_refused():
    with pytest.raises(EgressBlocked, match="huggingface.co"):
        socket.getaddrinfo("huggingface.co", 443)


def test_create_connection_and_udp_are_refused():
    with pytest.raises(EgressBlocked):
        socket.create_connection(("198.51.100.2", 80), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(EgressBlocked):
        s.sendto(b"x", ("198.51.100.3", 53))


def test_loopback_connections_work():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    t = threading.Thread(target=lambda: srv.accept()[0].close())
    t.start()
    with socket.create_connection(("localhost", port), timeout=5):
        pass
    t.join(5)
    srv.close()
    assert offline.blocked_attempts() == []


def test_guard_can_be_turned_off_explicitly():
    offline.install_egress_guard(strict=False)
    # nothing is listening on this TEST-NET address; we only check the guard does not raise EgressBlocked
    with socket.socket() as s:
        s.settimeout(0.01)
        with pytest.raises(OSError) as err:
            s.connect(("192.0.2.1", 9))
        assert not isinstance(err.value, EgressBlocked)


@pytest.mark.parametrize("host,ok", [("127.0.0.1", True), ("127.5.5.5", True), ("::1", True), ("localhost", True),
                                     ("[::1]", True), ("0.0.0.0", False), ("example.com", False),
                                     ("169.254.1.1", False)])
def test_is_loopback(host, ok):
    assert offline.is_loopback(host) is ok
