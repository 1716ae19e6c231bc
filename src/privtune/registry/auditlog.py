"""Tamper-evident audit log: an append-only JSONL file, hash-chained and sealed with keyed HMACs.

Why a file and not the registry DB: an auditor can be handed one file plus the key, and verify it with
nothing but this module; a shared PostgreSQL registry is administered by people whose edits this log must expose.

Three layers, each catching what the one before cannot:
- the hash chain (entry_hash = sha256(prev_hash + canonical JSON of the entry)) exposes an edited, deleted,
  inserted or reordered entry and names the first one that breaks it;
- a checkpoint entry every N entries (PRIVTUNE_AUDIT_CHECKPOINT_EVERY, default 100, or `checkpoint()` on demand)
  carries an HMAC of the chain head under a key kept outside the log, so a forger who rewrites the whole chain
  without the key is caught at the next checkpoint;
- a head anchor file (audit.log.head.json, HMAC'd, rewritten on every append) records the last seq and hash,
  so a truncated or rewritten tail after the last checkpoint is caught too.

Anyone holding the HMAC key can forge all three; keep the key where the writers can read it but log editors
cannot (PRIVTUNE_AUDIT_KEY_FILE), and write down `privtune log verify`'s head hash in an external ticket now and
then. Rotating the HMAC key: rename keys/audit-hmac.key to keys/audit-hmac-<key id>.key; a new key is created on the
next append, and verify finds old checkpoints' keys by their key id.

Appends hold a file lock (concurrent processes), write one whole line with O_APPEND and fsync it. A crash mid-write
leaves at most a torn last line without a newline: readers skip and report it, and the next append moves its bytes
to audit.log.jsonl.torn and records a `log.repair` entry before continuing the chain.
"""

from __future__ import annotations

import contextlib
import fnmatch
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from privtune import __version__, fsio
from privtune.errors import InputError
from privtune.paths import privtune_home

GENESIS = "0" * 64
DEFAULT_CHECKPOINT_EVERY = 100
CHECKPOINT_ACTION = "log.checkpoint"
ANOMALY_ACTION = "log.anomaly"
REPAIR_ACTION = "log.repair"
RECOVERED_ACTION = "log.recovered"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = ("seq", "time", "action", "user", "host", "pid", "version", "inputs", "outputs", "outcome", "details",
           "prev_hash", "entry_hash")


# --------------------------------------------------------------------------------------------- locations
def log_path() -> Path:
    override = os.environ.get("PRIVTUNE_AUDIT_LOG")
    return Path(override).expanduser() if override else privtune_home() / "audit.log.jsonl"


def key_path() -> Path:
    override = os.environ.get("PRIVTUNE_AUDIT_KEY_FILE")
    return Path(override).expanduser() if override else privtune_home() / "keys" / "audit-hmac.key"


def head_path(log: Path | None = None) -> Path:
    log = log or log_path()
    return log.with_name(log.name.removesuffix(".jsonl") + ".head.json")


def checkpoint_every() -> int:
    try:
        return max(1, int(os.environ.get("PRIVTUNE_AUDIT_CHECKPOINT_EVERY", DEFAULT_CHECKPOINT_EVERY)))
    except ValueError as e:
        raise InputError("must be a positive integer", field="PRIVTUNE_AUDIT_CHECKPOINT_EVERY") from e


# --------------------------------------------------------------------------------------------- pure parts
def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    """sha256(prev_hash + canonical JSON of every field but entry_hash)."""
    body = {k: v for k, v in entry.items() if k != "entry_hash"}
    return hashlib.sha256(str(entry.get("prev_hash", "")).encode() + canonical(body)).hexdigest()


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _mac(key: bytes, label: str, seq: int, chain_hash: str) -> str:
    return hmac.new(key, f"privtune-audit-{label}\n{seq}\n{chain_hash}".encode(), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _who() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers)
        user = f"uid:{os.getuid()}"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "version": __version__}


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _check_hashes(name: str, mapping: dict[str, str]) -> dict[str, str]:
    """Inputs/outputs are names → sha256 only: the log must never carry record text."""
    out = {}
    for k, v in mapping.items():
        if not isinstance(k, str) or not isinstance(v, str) or not _HEX64.match(v):
            raise ValueError(f"audit log {name}[{k!r}] must be a lowercase hex sha256, got {type(v).__name__}")
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------- key + head
def _read_key(path: Path) -> bytes:
    raw = path.read_bytes().strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", raw):
        return bytes.fromhex(raw.decode())
    if len(raw) < 32:
        raise InputError("not a privtune audit key (expected 64 hex characters)", where=str(path))
    return raw


def load_audit_key(create: bool = True) -> bytes | None:
    """The HMAC key (created 0600 on first use); None when absent and create is False."""
    path = key_path()
    if path.exists():
        return _read_key(path)
    if not create:
        return None
    fsio.ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fsio.FILE_MODE)
    except FileExistsError:  # another process won the race
        return _read_key(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return _read_key(path)


def _keys_by_id(key_file: Path | None = None) -> dict[str, bytes]:
    """Current key plus retired ones (audit-hmac-<id>.key beside it), so old checkpoints still verify."""
    key_file = key_file or key_path()
    keys: dict[str, bytes] = {}
    if not key_file.parent.is_dir():
        return keys
    for p in sorted(key_file.parent.glob("audit-hmac*.key")) + [key_file]:
        if p.is_file():
            k = _read_key(p)
            keys[key_id(k)] = k
    return keys


def _read_head(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"corrupt": True}


def _head_ok(head: dict, keys: dict[str, bytes]) -> bool:
    key = keys.get(str(head.get("key_id")))
    if key is None or not isinstance(head.get("seq"), int):
        return False
    return hmac.compare_digest(str(head.get("hmac")), _mac(key, "head", head["seq"], str(head.get("entry_hash"))))


def _write_head(path: Path, seq: int, chain_hash: str, key: bytes) -> None:
    fsio.write_json(path, {"seq": seq, "entry_hash": chain_hash, "key_id": key_id(key),
                           "hmac": _mac(key, "head", seq, chain_hash)})


# --------------------------------------------------------------------------------------------- reading
@dataclass
class Line:
    lineno: int
    raw: bytes
    entry: dict | None
    error: str | None = None


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and the torn fragment after the last newline (b"" when none)."""
    *lines, tail = data.split(b"\n")
    return lines, tail


def _parse(lineno: int, raw: bytes) -> Line:
    try:
        obj = json.loads(raw)
    except ValueError:
        return Line(lineno, raw, None, "not valid JSON")
    if not isinstance(obj, dict) or not all(f in obj for f in _FIELDS):
        return Line(lineno, raw, None, "not an audit entry (fields missing)")
    return Line(lineno, raw, obj)


def read_lines(path: Path | None = None) -> tuple[list[Line], bytes]:
    path = path or log_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], b""
    lines, torn = _split(data)
    return [_parse(i, raw) for i, raw in enumerate(lines, 1)], torn


def entries(path: Path | None = None) -> list[dict]:
    """Every readable entry, in file order (a torn last line is skipped)."""
    return [ln.entry for ln in read_lines(path)[0] if ln.entry is not None]


# --------------------------------------------------------------------------------------------- appending
def _last_line(fh) -> tuple[bytes | None, bytes]:
    """(last complete line or None, torn fragment) read backwards, so appends stay O(1) in the log size."""
    end = fh.seek(0, os.SEEK_END)
    buf, pos, block = b"", end, 1 << 16
    while pos > 0:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        if buf.count(b"\n") >= 2 or (pos == 0 and b"\n" in buf):
            break
    if b"\n" not in buf:
        return None, buf
    head, torn = buf.rsplit(b"\n", 1)
    return head.rsplit(b"\n", 1)[-1], torn


def _write_line(fd: int, entry: dict) -> None:
    data = canonical(entry) + b"\n"
    written = os.write(fd, data)
    if written != len(data):  # a short write on a full disk: leave a torn line that the next append repairs
        raise OSError(f"short write to the audit log ({written}/{len(data)} bytes)")
    os.fsync(fd)


class _Appender:
    """Holds the chain tip while the lock is held; one instance per append() call."""

    def __init__(self, fd: int, seq: int, chain_hash: str):
        self.fd, self.seq, self.hash = fd, seq, chain_hash
        self.who = _who()

    def add(self, action: str, inputs: dict, outputs: dict, outcome: str, details: dict) -> dict:
        entry = {"seq": self.seq + 1, "time": _now(), "action": action, **self.who, "inputs": inputs,
                 "outputs": outputs, "outcome": outcome, "details": details, "prev_hash": self.hash}
        entry["entry_hash"] = entry_hash(entry)
        _write_line(self.fd, entry)
        self.seq, self.hash = entry["seq"], entry["entry_hash"]
        return entry

    def checkpoint(self, key: bytes) -> dict:
        seal = _mac(key, "checkpoint", self.seq + 1, self.hash)
        return self.add(CHECKPOINT_ACTION, {}, {}, "ok",
                        {"key_id": key_id(key), "covers_seq": self.seq, "hmac": seal})


def _repair_torn(path: Path, fd: int, torn: bytes, app: _Appender) -> None:
    side = path.with_name(path.name + ".torn")
    sfd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, fsio.FILE_MODE)
    try:
        os.write(sfd, torn + b"\n")
        os.fsync(sfd)
    finally:
        os.close(sfd)
    os.ftruncate(fd, os.fstat(fd).st_size - len(torn))
    os.fsync(fd)
    app.add(REPAIR_ACTION, {}, {}, "ok", {"torn_bytes": len(torn), "torn_sha256": hashlib.sha256(torn).hexdigest(),
                                          "moved_to": side.name})


def _reconcile_head(head: dict | None, keys: dict[str, bytes], seq: int, tip: str) -> list[tuple[str, str, dict]]:
    """Entries (action, outcome, details) recording any disagreement between the log tip and the head anchor."""
    if head is None:
        return [(ANOMALY_ACTION, "error", {"problem": "head anchor missing", "log_last_seq": seq})] if seq else []
    if not _head_ok(head, keys):
        return [(ANOMALY_ACTION, "error", {"problem": "head anchor HMAC invalid or unreadable", "log_last_seq": seq})]
    if head["seq"] > seq or (head["seq"] == seq and head["entry_hash"] != tip):
        return [(ANOMALY_ACTION, "error", {"problem": "log tail truncated or rewritten", "head_seq": head["seq"],
                                           "head_hash": head["entry_hash"], "log_last_seq": seq})]
    if head["seq"] < seq:
        return [(RECOVERED_ACTION, "ok", {
            "problem": "entries written without a head anchor update (crash between write and anchor?)",
            "first_seq": head["seq"] + 1, "last_seq": seq})]
    return []


def _locked_append(build) -> dict:
    path = log_path()
    fsio.ensure_private_dir(path.parent)
    with FileLock(str(path) + ".lock", mode=fsio.FILE_MODE):
        key = load_audit_key(create=True)
        assert key is not None
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, fsio.FILE_MODE)
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                last, torn = _last_line(fh)
            seq, tip = 0, GENESIS
            if last is not None:
                parsed = _parse(0, last)
                if parsed.entry is None:
                    raise InputError(f"the last audit log entry is unreadable ({parsed.error}); run `privtune log "
                                     "verify`", where=str(path))
                seq, tip = parsed.entry["seq"], parsed.entry["entry_hash"]
            app = _Appender(fd, seq, tip)
            hpath = head_path(path)
            findings = _reconcile_head(_read_head(hpath), _keys_by_id(), seq, tip)  # judged before the repair
            if torn:
                _repair_torn(path, fd, torn, app)
            for action, outcome, details in findings:
                app.add(action, {}, {}, outcome, details)
            result = build(app, key)
            if result["action"] != CHECKPOINT_ACTION and result["seq"] % checkpoint_every() == 0:
                app.checkpoint(key)
            _write_head(hpath, app.seq, app.hash, key)
        finally:
            os.close(fd)
    return result


def append(action: str, *, inputs: dict[str, str] | None = None, outputs: dict[str, str] | None = None,
           outcome: str = "ok", details: dict | None = None) -> dict:
    """Append one entry (time UTC, OS user, host, pid, version, hashes); returns it with seq and entry_hash.

    Fails closed: if the log cannot be written, the caller's action fails too.
    """
    if not action or not isinstance(action, str):
        raise ValueError("audit log action must be a non-empty string")
    ins, outs = _check_hashes("inputs", inputs or {}), _check_hashes("outputs", outputs or {})
    det = json.loads(json.dumps(details or {}, default=str))  # JSON-only, so the hash is reproducible
    return _locked_append(lambda app, key: app.add(action, ins, outs, outcome, det))


def hash_path(path: str | Path) -> str:
    """sha256 of a file or directory, of the plaintext when encrypted (stable across keys and rotations)."""
    from privtune.registry import crypto

    path = Path(path)
    return crypto.sha256_dir_plaintext(path) if path.is_dir() else crypto.sha256_plaintext(path)


@dataclass
class Recording:
    inputs: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    entry: dict | None = None


@contextlib.contextmanager
def recorded(action: str, *, inputs: dict[str, str] | None = None, details: dict | None = None
             ) -> Iterator[Recording]:
    """Log `action` when the block ends: outcome "ok", or "error" with the exception type (then re-raised).

        with auditlog.recorded("train", inputs={"dataset": manifest_sha}) as rec:
            run = train(...)
            rec.outputs["adapter"] = run["adapter_sha256"]
    """
    rec = Recording(dict(inputs or {}), details=dict(details or {}))
    _check_hashes("inputs", rec.inputs)
    try:
        yield rec
    except BaseException as e:
        outcome = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
        rec.entry = append(action, inputs=rec.inputs, outputs=rec.outputs, outcome=outcome,
                           details={**rec.details, "error": type(e).__name__})
        raise
    rec.entry = append(action, inputs=rec.inputs, outputs=rec.outputs, outcome="ok", details=rec.details)


def checkpoint() -> dict:
    """Seal the chain now (e.g. before handing the log to an auditor)."""
    return _locked_append(lambda app, key: app.checkpoint(key))


# --------------------------------------------------------------------------------------------- verifying
@dataclass
class Verification:
    ok: bool
    path: str
    entries: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    last_checkpoint_seq: int | None = None
    bad_seq: int | None = None
    bad_line: int | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.ok:
            return (f"audit log OK: {self.entries} entries ({self.checkpoints} HMAC checkpoints), chain head seq "
                    f"{self.last_seq} sha256 {self.last_hash}")
        where = f"line {self.bad_line}" + (f" (seq {self.bad_seq})" if self.bad_seq is not None else "")
        return f"audit log TAMPERED at {where}: {self.problem}"


class _Bad(Exception):
    def __init__(self, line: int | None, seq: int | None, problem: str):
        super().__init__(problem)
        self.line, self.seq, self.problem = line, seq, problem


def _walk(lines: list[Line], keys: dict[str, bytes], res: Verification) -> dict[int, str]:
    """Check chain, sequence and checkpoints line by line; raises _Bad at the first break."""
    prev, expected, seen, hashes = GENESIS, 1, {}, {}
    since = "the start of the log"
    for ln in lines:
        if ln.entry is None:
            raise _Bad(ln.lineno, None, f"{ln.error} (entry edited or garbage inserted)")
        e, seq = ln.entry, ln.entry.get("seq")
        if e.get("entry_hash") != entry_hash(e):
            raise _Bad(ln.lineno, seq, "content does not match its entry_hash (entry edited)")
        if seq != expected:
            if isinstance(seq, int) and seq in seen:
                raise _Bad(ln.lineno, seq, f"seq {seq} appears again (first at line {seen[seq]}): an entry was "
                                           "inserted or entries were reordered")
            raise _Bad(ln.lineno, seq, f"expected seq {expected} after seq {expected - 1}, found seq {seq}: "
                                       "an entry was deleted or entries were reordered")
        if e["prev_hash"] != prev:
            raise _Bad(ln.lineno, seq, f"prev_hash does not match entry seq {expected - 1}: an entry before it was "
                                       "replaced, inserted or deleted")
        if e["action"] == CHECKPOINT_ACTION:
            kid = str(e["details"].get("key_id"))
            key = keys.get(kid)
            if key is None:
                raise _Bad(ln.lineno, seq, f"checkpoint cannot be verified: HMAC key id {kid} not found "
                                           f"(expected at {key_path()})")
            if not hmac.compare_digest(str(e["details"].get("hmac")), _mac(key, "checkpoint", seq, prev)):
                raise _Bad(ln.lineno, seq, f"checkpoint HMAC invalid: entries after {since} were rewritten, or "
                                           "the checkpoint was forged without the key")
            res.checkpoints += 1
            res.last_checkpoint_seq = seq
            since = f"checkpoint seq {seq}"
        if e["action"] == ANOMALY_ACTION:
            raise _Bad(ln.lineno, seq, f"an append found the log tampered with: {e['details'].get('problem')} "
                                       f"({json.dumps(e['details'], sort_keys=True)})")
        if e["action"] == REPAIR_ACTION:
            res.notes.append(f"seq {seq}: a torn line from a crash ({e['details'].get('torn_bytes')} bytes) was "
                             f"moved to {e['details'].get('moved_to')}")
        if e["action"] == RECOVERED_ACTION:
            res.notes.append(f"seq {seq}: entries {e['details'].get('first_seq')}..{e['details'].get('last_seq')} "
                             "were not covered by the head anchor when found (crash, or appended outside privtune)")
        seen[seq] = ln.lineno
        hashes[seq] = e["entry_hash"]
        prev, expected = e["entry_hash"], expected + 1
        res.entries += 1
        res.last_seq, res.last_hash = seq, prev
    return hashes


def _check_tail(head: dict | None, keys: dict[str, bytes], hashes: dict[int, str], res: Verification,
                n_lines: int) -> None:
    since = f"checkpoint seq {res.last_checkpoint_seq}" if res.last_checkpoint_seq else "the start of the log"
    if head is None:
        if res.entries:
            raise _Bad(None, None, "head anchor missing: a truncated tail after "
                                   f"{since} cannot be ruled out (use --no-head for a copy without it)")
        return
    if not _head_ok(head, keys):
        raise _Bad(None, None, "head anchor HMAC invalid or unreadable (forged, or made with another key)")
    hseq = head["seq"]
    if hseq > res.last_seq:
        raise _Bad(n_lines + 1, res.last_seq + 1, f"log truncated: the head anchor records seq {hseq} but the log "
                                                  f"ends at seq {res.last_seq}")
    if hashes.get(hseq, GENESIS) != head["entry_hash"]:
        raise _Bad(None, hseq, f"entries after {since} were rewritten: entry seq {hseq} does not match the head "
                               "anchor's hash")
    if hseq < res.last_seq:
        res.notes.append(f"entries {hseq + 1}..{res.last_seq} are newer than the head anchor (crash before the "
                         "anchor update, or appended outside privtune); the next append records it")


def verify(path: Path | None = None, *, key_file: Path | None = None, check_head: bool = True) -> Verification:
    """Walk the whole log; name the first entry that breaks the chain, a checkpoint or the head anchor."""
    path = Path(path) if path else log_path()
    res = Verification(ok=True, path=str(path))
    lines, torn = read_lines(path)
    keys = _keys_by_id(Path(key_file) if key_file else None)
    try:
        hashes = _walk(lines, keys, res)
        if check_head:
            _check_tail(_read_head(head_path(path)), keys, hashes, res, len(lines))
    except _Bad as bad:
        res.ok, res.bad_line, res.bad_seq, res.problem = False, bad.line, bad.seq, bad.problem
    if torn:
        res.notes.append(f"line {len(lines) + 1}: torn last line ({len(torn)} bytes, a crash mid-write); it is "
                         "ignored and the next append repairs it")
    return res


# --------------------------------------------------------------------------------------------- querying
def _parse_time(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError(f"not an ISO date/time: {value!r}", field="since") from e
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def select(since: str | None = None, action: str | None = None, path: Path | None = None) -> list[dict]:
    """Entries at/after `since` (ISO, UTC when no zone) whose action matches `action` (exact or glob, e.g. 'serve.*')."""
    t0 = _parse_time(since) if since else None
    out = []
    for e in entries(path):
        if t0 and _parse_time(e["time"]) < t0:
            continue
        if action and not (e["action"] == action or fnmatch.fnmatchcase(e["action"], action)):
            continue
        out.append(e)
    return out


def touching(hashes: Iterable[str], path: Path | None = None) -> list[dict]:
    """Entries whose inputs or outputs include any of these sha256 values (lineage for model cards)."""
    wanted = {h for h in hashes if h}
    return [e for e in entries(path)
            if wanted & (set(e.get("inputs", {}).values()) | set(e.get("outputs", {}).values()))]


def _short(mapping: dict[str, str]) -> str:
    return ", ".join(f"{k}={v[:12]}" for k, v in mapping.items()) or "-"


def _rows(selected: list[dict]) -> Iterator[tuple[str, ...]]:
    for e in selected:
        details = {k: v for k, v in e["details"].items() if k != "hmac"}
        yield (str(e["seq"]), e["time"][:19].replace("T", " "), f"{e['user']}@{e['host']}", e["action"], e["outcome"],
               _short(e["inputs"]), _short(e["outputs"]), json.dumps(details, sort_keys=True)[:80])


def show(since: str | None = None, action: str | None = None, as_json: bool = False) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    selected = select(since, action)
    if as_json:
        print(json.dumps(selected, indent=2, ensure_ascii=False))
        return selected
    table = Table(title="privtune audit log")
    for col in ("seq", "time (UTC)", "who", "action", "outcome"):
        table.add_column(col, no_wrap=True)
    for col in ("inputs", "outputs", "details"):
        table.add_column(col, overflow="fold" if col != "details" else "ellipsis", max_width=48)
    for row in _rows(selected):
        table.add_row(*row)
    console = Console()
    console.print(table)
    # on its own line so a narrow terminal never wraps the count (scripts grep for it)
    console.print(f"{len(selected)} entries in {log_path()}", soft_wrap=True)
    return selected


def verify_cli(key_file: Path | None = None, log: Path | None = None, check_head: bool = True) -> Verification:
    """`privtune log verify`: one summary line; a broken log is bad input (exit 2) naming file:line."""
    res = verify(log, key_file=key_file, check_head=check_head)
    for note in res.notes:
        print(f"note: {note}")
    if not res.ok:
        where = f"{res.path}:{res.bad_line}" if res.bad_line else res.path
        raise InputError(f"audit log TAMPERED{f' at seq {res.bad_seq}' if res.bad_seq else ''}: {res.problem}",
                         where=where)
    print(res.summary())
    return res
