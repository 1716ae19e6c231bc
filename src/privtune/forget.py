"""`privtune forget`: erase a data subject from prepared datasets and flag every run trained on them.

What counts as the subject's records:
- `--id ID`: records whose `id`, or a metadata field whose name ends in "id" (source_id, customer_id, …), equals ID;
- `--match TEXT`: records where any string (message contents, metadata values) contains TEXT, case-insensitively,
  or whose keyed subject index (subjects.idx.jsonl, written by prepare) holds the fingerprint of TEXT. Prepared
  text is redacted, so "Anna Smith" is usually a [PERSON] placeholder by now: the index, built from the values
  the redactor found *before* replacing them, is what still finds her. Fingerprints are HMAC-SHA256 under a key
  outside the dataset (PRIVTUNE_HOME/keys/subject-index.key or PRIVTUNE_SUBJECT_KEY_FILE), so the index cannot
  be tested against guessed names without that key.

Versioning: the dataset directory keeps its path and is replaced as a whole (staged, then swapped) by the next
version, so `--data DIR` in scripts keeps working and no copy of the subject's records remains. Its manifest
gets an `erasure` section (dataset_version, previous_manifest_sha256, removed counts, request fingerprints) and
new file hashes, hence a new manifest sha256. The old version is kept only with `--keep-old`, and only when every
file in it is encrypted (then it moves to DIR@v<N> for legal holds; destroy its key to finish the erasure).

Every run in the registry whose dataset manifest sha256 is an erased version is marked `retrain_required` there
and gets RUN_DIR/RETRAIN_REQUIRED.json; `is_retrain_required(run_dir)` is what serve/export check.
The audit log gets one `forget` entry with hashes and counts only: never the match text or the removed ids
(the request is logged as its keyed fingerprint, so an auditor holding the key can confirm a given request).
Raw input files are outside privtune's control: their paths are listed so they can be erased at the source.

Safety: every dataset is judged before any is changed; a request that would remove more than 10% of a dataset's
records is refused unless --force (a match on text every record shares, such as a system prompt or the company
name, would otherwise wipe the dataset). --dry-run shows the counts and the runs that would be flagged.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.errors import InputError
from privtune.paths import privtune_home
from privtune.registry import crypto

log = logging.getLogger("privtune.forget")

SUBJECT_INDEX = "subjects.idx.jsonl"
MARKER = "RETRAIN_REQUIRED.json"
REDACTED = "[ERASED]"


# --------------------------------------------------------------------------------------------- fingerprints
def subject_key_path() -> Path:
    override = os.environ.get("PRIVTUNE_SUBJECT_KEY_FILE")
    return Path(override).expanduser() if override else privtune_home() / "keys" / "subject-index.key"


def subject_key(create: bool = True) -> bytes | None:
    path = subject_key_path()
    if not path.exists():
        if not create:
            return None
        fsio.ensure_private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fsio.FILE_MODE)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        except FileExistsError:
            pass
    raw = path.read_text().strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        raise InputError("not a privtune key (expected 64 hex characters)", where=str(path))
    return bytes.fromhex(raw)


def normalize(value: str) -> str:
    """Case, spacing and punctuation do not matter: 'Anna  Smith' = 'anna smith', '+1 (555) 010-2000' = '15550102000'."""
    return "".join(ch for ch in value.casefold() if ch.isalnum() or ch in "@.")


def fingerprint(value: str, key: bytes | None = None) -> str:
    key = key if key is not None else subject_key()
    return hmac.new(key, b"subject\n" + normalize(value).encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprints(values: Iterable[str], key: bytes | None = None) -> list[str]:
    """Sorted, de-duplicated fingerprints of the PII values found in one record (for prepare's index)."""
    key = key if key is not None else subject_key()
    return sorted({fingerprint(v, key) for v in values if normalize(v)})


def subject_index_line(rid: str, fps: list[str]) -> str:
    """One line of DIR/subjects.idx.jsonl: {"id", "fp": [...]} for a record that had detected PII. prepare writes
    them as it writes the splits (in dataset order), so the index never has to sit in memory whole."""
    return json.dumps({"id": rid, "fp": fps}, sort_keys=True) + "\n"


def request_fingerprint(kind: str, value: str) -> str:
    """What the audit log stores for an erasure request instead of the request itself."""
    return _keyed(f"erasure-request\n{kind}\n{normalize(value)}")


def _keyed(message: str) -> str:
    """Keyed, so a short id or a name in the audit log cannot be confirmed by guessing without the key."""
    return hmac.new(subject_key(), message.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Request:
    ids: frozenset[str] = frozenset()
    texts: tuple[str, ...] = ()
    fps: frozenset[str] = frozenset()

    @classmethod
    def build(cls, ids: Iterable[str] = (), texts: Iterable[str] = ()) -> Request:
        ids, texts = [i for i in ids if i], [t for t in texts if t and t.strip()]
        if not ids and not texts:
            raise InputError("say whose records to erase: --id ID or --match TEXT", field="match")
        short = [t for t in texts if len(normalize(t)) < 3]
        if short:
            raise InputError("match text must have at least 3 letters or digits (it would erase far too much)",
                             field="match")
        return cls(frozenset(ids), tuple(t.casefold() for t in texts), frozenset(fingerprint(t) for t in texts))

    def fingerprints_for_log(self) -> dict[str, str]:
        out = {f"request.id.{i}": request_fingerprint("id", v) for i, v in enumerate(sorted(self.ids), 1)}
        out.update({f"request.match.{i}": request_fingerprint("match", v) for i, v in enumerate(self.texts, 1)})
        return out


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


PROVENANCE_KEYS = frozenset({"source_line", "source", "source_file", "split"})
_ID_KEY = re.compile(r"(^|_)id$|[a-z]Id$", re.IGNORECASE)


def _id_fields(record: dict) -> set[str]:
    ids = {str(record.get("id"))} if record.get("id") is not None else set()
    meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    ids |= {str(v) for k, v in meta.items() if _ID_KEY.search(str(k)) and isinstance(v, str | int)}
    return ids


def matches(record: dict, req: Request, indexed_ids: set[str]) -> bool:
    if req.ids & _id_fields(record):
        return True
    if str(record.get("id")) in indexed_ids:
        return True
    body = {k: v for k, v in record.items() if k not in ("id", "metadata")}
    meta = record.get("metadata")
    if isinstance(meta, dict):  # provenance fields name files, not people: "tickets" must not match every record
        body["metadata"] = {k: v for k, v in meta.items() if k not in PROVENANCE_KEYS}
    return any(t in s.casefold() for s in _strings(body) for t in req.texts)


# --------------------------------------------------------------------------------------------- one dataset
@dataclass
class DatasetResult:
    path: str
    old_manifest_sha256: str
    new_manifest_sha256: str | None = None
    removed: dict[str, int] = field(default_factory=dict)
    scrubbed: list[str] = field(default_factory=list)
    kept_old: str | None = None
    sources: list[str] = field(default_factory=list)
    removed_ids: set[str] = field(default_factory=set, repr=False)
    records_before: int = 0  # in the split files (train/val/test.jsonl)

    @property
    def n_removed(self) -> int:
        return sum(self.removed.values())

    @property
    def split_removed(self) -> int:
        return sum(v for k, v in self.removed.items() if k in SPLIT_FILES)


TEXT_SUFFIXES = {".jsonl", ".csv", ".md", ".txt", ".html", ".json"}
SPLIT_FILES = {"train.jsonl", "val.jsonl", "test.jsonl"}
MAX_FRACTION = 0.10  # one subject is rarely a tenth of a dataset; more means the match is too broad


def _read(path: Path) -> tuple[str, bool]:
    try:
        return crypto.read_text_maybe_encrypted(path), crypto.is_encrypted(path)
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", where=str(path)) from None


def _filter_jsonl(path: Path, text: str, req: Request, indexed: set[str]) -> tuple[str, int, list[dict]]:
    """(text without the subject's lines, records kept, records removed); kept lines stay byte-identical."""
    kept_lines, kept, hit = [], 0, []
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        if not line.strip():
            kept_lines.append(line)
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise InputError(f"not valid JSON ({e.msg})", where=f"{path}:{n}") from None
        if isinstance(row, dict) and matches(row, req, indexed):
            hit.append(row)
        else:
            kept_lines.append(line)
            kept += 1
    return "".join(kept_lines), kept, hit


def _parse_jsonl(path: Path, text: str) -> list[dict]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as e:
            raise InputError(f"not valid JSON ({e.msg})", where=f"{path}:{n}") from None
    return rows


def _index_hits(dataset: Path, req: Request) -> set[str]:
    path = dataset / SUBJECT_INDEX
    if not path.is_file() or not req.fps:
        return set()
    return {str(r.get("id")) for r in _parse_jsonl(path, _read(path)[0]) if req.fps & set(r.get("fp", []))}


def _filter_csv(text: str, req: Request, ids: set[str]) -> tuple[str, int]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return text, 0
    header, body = rows[0], rows[1:]
    id_cols = [i for i, h in enumerate(header) if h.lower() == "id" or h.lower().endswith("_id")]
    kept = [r for r in body if not (any(i < len(r) and r[i] in ids | req.ids for i in id_cols)
                                    or any(t in cell.casefold() for cell in r for t in req.texts))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *kept])
    return out.getvalue(), len(body) - len(kept)


def _scrub_text(text: str, req: Request) -> tuple[str, int]:
    n = 0
    for t in req.texts:
        text, k = re.subn(re.escape(t), REDACTED, text, flags=re.IGNORECASE)
        n += k
    return text, n


def _update_manifest(manifest: dict, old_sha: str, counts: dict[str, int], removed: dict[str, int],
                     file_hashes: dict[str, str], req_fps: dict[str, str]) -> dict:
    manifest = json.loads(json.dumps(manifest))
    c = manifest.get("counts")
    if isinstance(c, dict):
        for split in ("train", "val", "test"):
            if f"{split}.jsonl" in counts and split in c:
                c[split] = counts[f"{split}.jsonl"]
    files = manifest.get("files")
    if isinstance(files, dict):
        for name, entry in files.items():
            if name in file_hashes:
                if isinstance(entry, dict):
                    entry["sha256"] = file_hashes[name]
                    for k in ("records", "n", "count"):
                        if k in entry and name in counts:
                            entry[k] = counts[name]
                else:
                    files[name] = file_hashes[name]
    er = manifest.setdefault("erasure", {})
    er["dataset_version"] = int(er.get("dataset_version", 1)) + 1
    er["previous_manifest_sha256"] = old_sha
    er.setdefault("history", []).append({"time": datetime.now(UTC).isoformat(timespec="seconds"),
                                         "previous_manifest_sha256": old_sha, "removed": removed,
                                         "request_fingerprints": sorted(req_fps.values())})
    return manifest


def _all_encrypted(path: Path) -> bool:
    files = [p for p in path.rglob("*") if p.is_file()]
    return bool(files) and all(crypto.is_encrypted(p) for p in files)


def forget_dataset(dataset: Path, req: Request, *, keep_old: bool = False, dry_run: bool = False) -> DatasetResult:
    """Write the next version of one dataset without the subject's records; None-changes leave it untouched."""
    mpath = dataset / "manifest.json"
    if not mpath.is_file():
        raise InputError("not a prepared dataset: manifest.json is missing", where=str(mpath))
    mtext, m_enc = _read(mpath)
    try:
        manifest = json.loads(mtext)
    except ValueError as e:
        raise InputError(f"manifest is not valid JSON ({e})", where=str(mpath)) from None
    res = DatasetResult(str(dataset.resolve()), fsio.sha256_file(mpath),
                        sources=[str(s.get("path")) for s in manifest.get("sources", []) if isinstance(s, dict)])
    indexed = _index_hits(dataset, req)
    new_files: dict[str, tuple[bytes, bool]] = {}
    counts: dict[str, int] = {}
    removed_ids = res.removed_ids
    for f in sorted(p for p in dataset.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = f.relative_to(dataset).as_posix()
        enc = crypto.is_encrypted(f)
        if f.suffix not in TEXT_SUFFIXES:  # plots, binaries: nothing we can search, kept byte for byte
            new_files[rel] = (crypto.read_bytes_maybe_encrypted(f), enc)
            continue
        text = _read(f)[0]
        if f.suffix == ".jsonl" and f.name != SUBJECT_INDEX:
            text, kept, hit = _filter_jsonl(f, text, req, indexed)
            removed_ids |= {str(r.get("id")) for r in hit}
            if hit:
                res.removed[rel] = len(hit)
            counts[rel] = kept
            if rel in SPLIT_FILES:
                res.records_before += kept + len(hit)
        elif f.suffix == ".csv":
            text, n = _filter_csv(text, req, indexed)
            if n:
                res.removed[rel] = n
        elif f.suffix in (".md", ".txt", ".html", ".json"):
            text, n = _scrub_text(text, req)
            if n:
                res.scrubbed.append(rel)
        new_files[rel] = (text.encode("utf-8"), enc)
    if (dataset / SUBJECT_INDEX).is_file() and removed_ids:
        text, enc = _read(dataset / SUBJECT_INDEX)
        kept = [r for r in _parse_jsonl(dataset / SUBJECT_INDEX, text) if str(r.get("id")) not in removed_ids]
        new_files[SUBJECT_INDEX] = ("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode(), enc)
    if (not res.removed and not res.scrubbed) or dry_run:
        return res
    if keep_old and not _all_encrypted(dataset):
        raise InputError("--keep-old keeps the previous version only when every file in it is encrypted (a "
                         "plaintext copy would defeat the erasure)", where=str(dataset))
    key = crypto.load_key() if any(enc for _, enc in new_files.values()) or m_enc else None
    hashes = {rel: hashlib.sha256(data).hexdigest() for rel, (data, _) in new_files.items()}
    manifest = _update_manifest(manifest, res.old_manifest_sha256, counts, res.removed, hashes,
                                req.fingerprints_for_log())
    version = manifest["erasure"]["dataset_version"]
    with fsio.staged_dir(dataset.with_name(f".{dataset.name}.next")) as staged:
        for rel, (data, enc) in new_files.items():
            fsio.write_bytes(staged / rel, crypto.encrypt_bytes(data, key) if enc else data)
        mbytes = fsio.dumps(manifest).encode("utf-8")
        fsio.write_bytes(staged / "manifest.json", crypto.encrypt_bytes(mbytes, key) if m_enc else mbytes)
    nxt = dataset.with_name(f".{dataset.name}.next")
    res.new_manifest_sha256 = fsio.sha256_file(nxt / "manifest.json")
    old = dataset.with_name(f"{dataset.name}@v{version - 1}" if keep_old else f".{dataset.name}.erased")
    crypto.wipe_tree(old)  # a leftover from an interrupted run
    os.replace(dataset, old)
    os.replace(nxt, dataset)
    if keep_old:
        res.kept_old = str(old)
    else:
        crypto.wipe_tree(old)
    return res


# --------------------------------------------------------------------------------------------- runs
def _marker(run_dir: Path) -> Path:
    return Path(run_dir) / MARKER


def retrain_reason(run_dir: str | Path) -> str | None:
    """Why the run must be retrained (erasure), or None; checks the run dir marker, then the registry."""
    marker = _marker(Path(run_dir))
    if marker.is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            return str(info.get("reason", "an erasure removed records from its training data"))
        except ValueError:
            return "an erasure removed records from its training data (marker unreadable)"
    try:
        from privtune.registry.store import RETRAIN_REQUIRED, run_status

        if run_status(run_dir) == RETRAIN_REQUIRED:
            return "the registry marks it retrain_required (an erasure removed records from its training data)"
    except Exception as e:  # noqa: BLE001 - an unreachable registry must not hide the marker check above
        log.warning("registry not reachable to check %s (%s); relying on %s", run_dir, type(e).__name__, MARKER)
    return None


def is_retrain_required(run_dir: str | Path) -> bool:
    """True when serving/exporting this adapter would use data a subject asked to erase (serve refuses unless forced)."""
    return retrain_reason(run_dir) is not None


def _flag_runs(old_shas: dict[str, str], reason: str) -> list[dict]:
    from privtune.registry import store

    flagged = store.mark_retrain_required(old_shas.keys(), reason)
    for run in flagged:
        rd = Path(run["path"])
        if rd.is_dir():
            fsio.write_json(_marker(rd), {"reason": reason, "dataset_manifest_sha256": run["dataset_manifest_sha256"],
                                          "new_dataset_manifest_sha256": old_shas[run["dataset_manifest_sha256"]],
                                          "time": datetime.now(UTC).isoformat(timespec="seconds")})
        else:
            run["note"] = "run directory not found on this machine: flagged in the registry only"
    return flagged


# --------------------------------------------------------------------------------------------- the verb
@dataclass
class ForgetReport:
    datasets: list[DatasetResult]
    runs: list[dict]
    dry_run: bool
    audit_seq: int | None = None

    @property
    def n_removed(self) -> int:
        return sum(d.n_removed for d in self.datasets)


def _too_broad(results: list[DatasetResult], max_fraction: float) -> None:
    for r in results:
        if r.records_before and r.split_removed / r.records_before > max_fraction:
            raise InputError(
                f"this request would remove {r.split_removed} of {r.records_before} records "
                f"({r.split_removed / r.records_before:.0%}); a match that broad usually hits text shared by many "
                "records (a system prompt, a company name). Check with --dry-run, narrow it, or pass --force",
                where=r.path, field="match")


def forget(data_dirs: list[Path], *, ids: Iterable[str] = (), matches_: Iterable[str] = (), keep_old: bool = False,
           dry_run: bool = False, force: bool = False) -> ForgetReport:
    from privtune.registry import auditlog, store

    dirs = [Path(d) for d in data_dirs]
    if not dirs:
        raise InputError("name the prepared dataset(s) to erase from with --data DIR", field="data")
    for d in dirs:
        if not d.is_dir():
            raise InputError("dataset directory not found", where=str(d), field="data")
    req = Request.build(ids, matches_)
    store.list_runs()  # fail on an unreachable registry before any dataset is rewritten
    results = [forget_dataset(d, req, dry_run=True) for d in dirs]  # judge every dataset before changing any
    if not force and not dry_run:
        _too_broad(results, MAX_FRACTION)
    if not dry_run:
        results = [forget_dataset(d, req, keep_old=keep_old) for d in dirs]
    changed = {r.old_manifest_sha256: r.new_manifest_sha256 for r in results if r.new_manifest_sha256}
    if dry_run:
        affected = [r.old_manifest_sha256 for r in results if r.removed or r.scrubbed]
        runs = store.runs_trained_on(affected) if affected else []
    else:
        for old, new in changed.items():
            store.mark_dataset_superseded(old, new)
            manifest_path = next(Path(r.path) / "manifest.json" for r in results if r.new_manifest_sha256 == new)
            store.record_dataset(manifest_path.parent, json.loads(crypto.read_text_maybe_encrypted(manifest_path)),
                                 new)
        reason = (f"erasure on {datetime.now(UTC).date().isoformat()}: records removed from dataset version(s) "
                  + ", ".join(s[:12] for s in changed))
        runs = _flag_runs({o: n for o, n in changed.items() if n}, reason) if changed else []
    report = ForgetReport(results, runs, dry_run)
    entry = auditlog.append(
        "forget" + (".dry_run" if dry_run else ""),
        inputs={**req.fingerprints_for_log(), **{f"dataset:{r.path}": r.old_manifest_sha256 for r in results}},
        outputs={f"dataset:{r.path}": r.new_manifest_sha256 for r in results if r.new_manifest_sha256},
        outcome="ok" if report.n_removed or any(r.scrubbed for r in results) else "no_match",
        details={"removed": {r.path: r.removed for r in results}, "scrubbed": {r.path: r.scrubbed for r in results},
                 "kept_old": [r.kept_old for r in results if r.kept_old],
                 "runs_flagged": [run["path"] for run in runs] if not dry_run else [],
                 "removed_ids_hmac": _ids_digest(results)})
    report.audit_seq = entry["seq"]
    return report


def _ids_digest(results: list[DatasetResult]) -> str:
    """Keyed digest of the removed record ids: proves which records went without naming them."""
    return _keyed("erased-ids\n" + "\n".join(sorted(set().union(*(r.removed_ids for r in results)))))


def print_report(report: ForgetReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = "privtune forget" + (" (dry run: nothing changed)" if report.dry_run else "")
    table = Table(title=title)
    for col in ("dataset", "removed", "old manifest", "new manifest", "note"):
        table.add_column(col, overflow="fold")
    for r in report.datasets:
        removed = ", ".join(f"{k}: {v}" for k, v in r.removed.items()) or "0"
        note = []
        if r.scrubbed:
            note.append("text scrubbed in " + ", ".join(r.scrubbed))
        if r.kept_old:
            note.append(f"old version kept (encrypted) at {r.kept_old}")
        table.add_row(r.path, removed, r.old_manifest_sha256[:12], (r.new_manifest_sha256 or "-")[:12],
                      "; ".join(note) or "-")
    console.print(table)
    verb = "would be marked" if report.dry_run else "marked"
    if report.runs:
        console.print(f"{len(report.runs)} run(s) trained on an affected dataset version {verb} retrain_required:")
        for run in report.runs:
            console.print(f"  {run['path']}  adapter={run.get('adapter_name') or '-'}  {run.get('note', '')}")
    else:
        console.print(f"No registered run was trained on an affected dataset version ({verb}: none).")
    if not report.n_removed and not any(r.scrubbed for r in report.datasets):
        console.print("No record matched: nothing was changed.")
    sources = sorted({s for r in report.datasets if r.removed for s in r.sources})
    if sources:
        console.print("Raw inputs are not touched by privtune; erase the subject there too: " + ", ".join(sources))
    if report.audit_seq:
        console.print(f"Audit log entry seq {report.audit_seq} (the request is logged as a keyed fingerprint only).")


def cli(data: list[Path], ids: list[str], match: list[str], keep_old: bool, dry_run: bool,
        force: bool = False) -> ForgetReport:
    report = forget(data, ids=ids, matches_=match, keep_old=keep_old, dry_run=dry_run, force=force)
    print_report(report)
    return report
