"""API keys: argon2-hashed in a private keys file, each with a name, a role, its adapters and a rate limit.

A key looks like `pt-<id>-<secret>`; the id picks the record, so a request costs one argon2 verify at most
(and none once the key was verified in this process: the server remembers a sha256 of good keys in memory).
The server re-reads the file when it changes, so `privtune keys revoke` takes effect without a restart.
The file holds hashes only; the key itself is printed once by `privtune keys add` and never stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from privtune import fsio
from privtune.errors import InputError

ROLES = ("client", "metrics", "admin")  # client: inference; metrics: /metrics; admin: both
KEY_PREFIX = "pt"
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hr|hour|d|day)\s*$", re.IGNORECASE)
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600,
            "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_id: str
    hash: str
    adapters: tuple[str, ...]  # served model names, or ("*",) for all
    rate: str  # "60/min"
    role: str = "client"
    created_at: str = ""
    revoked_at: str | None = None

    def allows(self, model: str) -> bool:
        return "*" in self.adapters or model in self.adapters

    def may_infer(self) -> bool:
        return self.role in ("client", "admin")

    def may_read_metrics(self) -> bool:
        return self.role in ("metrics", "admin")

    def public(self) -> dict:
        d = asdict(self)
        d.pop("hash")
        d["adapters"] = list(self.adapters)
        return d


def default_keys_path() -> Path:
    from privtune.paths import privtune_home

    return privtune_home() / "keys.json"


def parse_rate(spec: str) -> tuple[int, float]:
    """'60/min' -> (60, 60.0): at most 60 requests per 60 s, refilled smoothly."""
    m = _RATE_RE.match(spec or "")
    if not m or int(m.group(1)) < 1:
        raise InputError(f"rate {spec!r} must look like 60/min, 5/s, 1000/hour or 20000/day", field="rate")
    return int(m.group(1)), float(_PERIODS[m.group(2).lower()])


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_keys(path: str | Path) -> list[ApiKey]:
    """Every record in the keys file (revoked ones too); a missing file is an empty list."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"keys file is not valid JSON: {e.msg}", where=f"{path}:{e.lineno}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"keys file is not UTF-8 (byte {e.start})", where=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InputError("keys file must be a JSON object with a 'keys' list (written by `privtune keys add`)",
                         where=str(path), field="keys")
    out = []
    for i, row in enumerate(data["keys"]):
        try:
            key = ApiKey(name=row["name"], key_id=row["key_id"], hash=row["hash"], adapters=tuple(row["adapters"]),
                         rate=row["rate"], role=row.get("role", "client"), created_at=row.get("created_at", ""),
                         revoked_at=row.get("revoked_at"))
        except (KeyError, TypeError) as e:
            raise InputError(f"key record is missing {e}", where=str(path), field=f"keys[{i}]") from None
        if key.role not in ROLES:
            raise InputError(f"role {key.role!r} is not one of {', '.join(ROLES)}", where=str(path),
                             field=f"keys[{i}].role")
        parse_rate(key.rate)
        out.append(key)
    return out


def _save(path: Path, keys: list[ApiKey]) -> None:
    rows = []
    for k in keys:
        row = asdict(k)
        row["adapters"] = list(k.adapters)
        rows.append(row)
    fsio.write_json(path, {"version": 1, "keys": rows})


def _lock(path: Path):
    from filelock import FileLock

    fsio.ensure_private_dir(path.parent)
    return FileLock(str(path) + ".lock")


def add_key(path: str | Path, name: str, adapters: list[str], rate: str = "60/min", role: str = "client") -> str:
    """Create a key and return it (the only time it exists in clear); the file keeps its argon2 hash."""
    path = Path(path)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$", name or ""):
        raise InputError(f"key name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ -", field="name")
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    adapters = [a.strip() for a in adapters if a.strip()]
    if not adapters and role != "metrics":
        raise InputError("give the adapters this key may use (--adapters a,b or --adapters '*')", field="adapters")
    parse_rate(rate)
    with _lock(path):
        keys = load_keys(path)
        if any(k.name == name and k.revoked_at is None for k in keys):
            raise InputError(f"an active key named {name!r} exists; revoke it first", where=str(path), field="name")
        key_id = secrets.token_hex(4)
        while any(k.key_id == key_id for k in keys):
            key_id = secrets.token_hex(4)
        token = f"{KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(32)}"
        keys.append(ApiKey(name=name, key_id=key_id, hash=_hasher().hash(token), adapters=tuple(adapters),
                           rate=rate, role=role, created_at=_now()))
        _save(path, keys)
        _audit("keys.add", path, keys[-1])
    return token


def revoke_key(path: str | Path, name: str) -> ApiKey:
    """Mark the active key `name` revoked (the record stays, for the audit trail)."""
    path = Path(path)
    with _lock(path):
        keys = load_keys(path)
        for i, k in enumerate(keys):
            if k.name == name and k.revoked_at is None:
                keys[i] = ApiKey(**{**asdict(k), "adapters": k.adapters, "revoked_at": _now()})
                _save(path, keys)
                _audit("keys.revoke", path, keys[i])
                return keys[i]
    raise InputError(f"no active key named {name!r}", where=str(path), field="name")


def _audit(action: str, path: Path, key: ApiKey) -> None:
    from privtune.registry import auditlog

    auditlog.append(action, outputs={"keys_file": fsio.sha256_file(path)},
                    details={**key.public(), "file": str(path.resolve())})


def _split_token(token: str) -> str | None:
    parts = token.split("-", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        return None
    return parts[1]


class Authenticator:
    """Token -> ApiKey, re-reading the keys file when it changes; thread-safe."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, ApiKey] = {}
        self._good: dict[str, str] = {}  # sha256(token) -> key_id
        self._bad: dict[str, None] = {}  # sha256(token) of recent failures (bounded)
        self.reload()

    def reload(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and self._stamp is not None:
                return
            keys = load_keys(self.path)
            self._by_id = {k.key_id: k for k in keys if k.revoked_at is None}
            self._good.clear()
            self._bad.clear()
            self._stamp = stamp

    def active_keys(self) -> list[ApiKey]:
        return list(self._by_id.values())

    def authenticate(self, token: str | None) -> ApiKey | None:
        if not token:
            return None
        self.reload()
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            known = self._good.get(digest)
            if known is not None:
                return self._by_id.get(known)
            if digest in self._bad:
                return None
            key_id = _split_token(token)
            record = self._by_id.get(key_id) if key_id else None
        if record is not None and _verify(record.hash, token):
            with self._lock:
                if self._by_id.get(record.key_id) is record:
                    self._good[digest] = record.key_id
            return record
        with self._lock:
            if len(self._bad) >= 4096:
                self._bad.pop(next(iter(self._bad)))
            self._bad[digest] = None
        return None


def _verify(hashed: str, token: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(hashed, token)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class RateLimiter:
    """A token bucket per key name: `count` requests per `period` seconds, refilled continuously."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, name: str, rate: str) -> float:
        """0.0 when allowed (and counted); otherwise the seconds until the next request would be allowed."""
        count, period = parse_rate(rate)
        per_second = count / period
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (float(count), now))
            tokens = min(float(count), tokens + (now - last) * per_second)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / per_second


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def print_keys(path: str | Path, as_json: bool = False, include_revoked: bool = False) -> list[dict]:
    rows = [k.public() for k in load_keys(path) if include_revoked or k.revoked_at is None]
    if as_json:
        print(json.dumps(rows, indent=2))
        return rows
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"API keys in {path}")
    for col in ("name", "key id", "role", "adapters", "rate", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["key_id"], r["role"], ",".join(r["adapters"]) or "-", r["rate"], r["created_at"],
                      r["revoked_at"] or "-")
    Console().print(table)
    return rows
