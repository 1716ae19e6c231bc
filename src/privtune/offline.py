"""Offline by default: Hugging Face env switches and a process-wide egress guard.

The guard is a `sys.addaudithook` hook (PEP 578), not a patch of the socket module: CPython raises the
`socket.connect`, `socket.getaddrinfo` and `socket.sendto` audit events before any packet leaves, and the
hook refuses every destination that is not loopback. Audit hooks cannot be removed, so `enabled` is a flag.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading

from privtune.errors import EgressBlocked

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "WANDB_DISABLED": "true",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "TLDEXTRACT_CACHE": "",  # filled in apply_offline_env: a private, empty cache; never a download
}

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class _Guard:
    def __init__(self) -> None:
        self.installed = False
        self.enabled = False
        self.attempts: list[str] = []
        self.lock = threading.Lock()


_guard = _Guard()


def apply_offline_env() -> None:
    """Set offline switches unless the user set them explicitly (setdefault: an admin may override)."""
    for key, value in OFFLINE_ENV.items():
        if key == "TLDEXTRACT_CACHE":
            from privtune.paths import privtune_home

            value = str(privtune_home() / "cache" / "tldextract")
        os.environ.setdefault(key, value)


def is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _destination(event: str, args: tuple) -> tuple[str, bool] | None:
    """Return (printable destination, allowed) for the socket events we care about."""
    if event == "socket.connect" or event == "socket.sendto":
        sock, address = args[0], args[1]
        family = getattr(sock, "family", None)
        if family == getattr(socket, "AF_UNIX", None) or isinstance(address, (str, bytes)):
            return None  # unix domain socket: local by definition
        if isinstance(address, tuple) and address:
            host, port = address[0], address[1] if len(address) > 1 else "?"
            return f"{host}:{port}", is_loopback(host)
        return None
    if event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        return f"{host}:{port}", is_loopback(host)
    if event == "socket.gethostbyname" or event == "socket.gethostbyaddr":
        host = args[0]
        return f"{host}", is_loopback(host)
    return None


def _hook(event: str, args: tuple) -> None:
    if not _guard.enabled or not event.startswith("socket."):
        return
    dest = _destination(event, args)
    if dest is None or dest[1]:
        return
    with _guard.lock:
        _guard.attempts.append(dest[0])
    raise EgressBlocked(
        f"privtune egress guard: refused outbound connection to {dest[0]} ({event}); privtune works "
        "offline and never contacts the network. Set PRIVTUNE_EGRESS=off only if you really mean it."
    )


def install_egress_guard(strict: bool | None = None) -> None:
    """Refuse non-loopback connections for the rest of the process (PRIVTUNE_EGRESS=off disables)."""
    if strict is None:
        strict = os.environ.get("PRIVTUNE_EGRESS", "strict").lower() != "off"
    if not _guard.installed:
        sys.addaudithook(_hook)
        _guard.installed = True
    _guard.enabled = strict


def disable_egress_guard() -> None:
    _guard.enabled = False


def blocked_attempts() -> list[str]:
    """Destinations refused so far in this process (for tests and the audit trail)."""
    with _guard.lock:
        return list(_guard.attempts)


def reset_attempts() -> None:
    with _guard.lock:
        _guard.attempts.clear()


def go_offline() -> None:
    """Everything privtune needs before importing any ML library."""
    apply_offline_env()
    install_egress_guard()
