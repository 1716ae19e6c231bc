"""`privtune prepare`: read → validate → dedup → redact → quality gates → near-dup → split → write.

Two passes, constant memory in the record count's text (a million short records stay well under 2 GiB):
1. stream the inputs chunk by chunk (`chunk_records`): exact dedup before redaction (copies that differ only
   in case/spacing may redact differently), redaction (N worker processes or Ray Data), ids from the redacted
   content, exact dedup after it (records that differed only in personal data), per-record quality gates,
   MinHash signatures. Each surviving record goes to a private spill file (tmpfs when it has room, wiped
   after); RAM keeps only per-record scalars (label, input hash, a few LSH bucket keys).
2. decide what only the whole dataset can tell (label conflicts, near-duplicate clusters, the stratified
   split, oversampling weights, the review sample), then stream the spill into train/val/test.

The directory is built in a temporary sibling and renamed into place (fsio.staged_dir): complete or absent.
With PRIVTUNE_KEY_FILE set, the splits, review.csv and the subject index are encrypted at rest (the split
files are then assembled in memory, because an encrypted file is written whole); manifest and data card hold
no record text and stay readable. Hashes in the manifest are of the plaintext (crypto.sha256_plaintext).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import PrepareConfig
from privtune.data import quality as q
from privtune.data.card import length_histogram, render_data_card, render_data_card_html, write_plots
from privtune.data.dedup import NearDupIndex, content_key, content_text
from privtune.data.formats import Record, read_records, stable_id
from privtune.data.progress import progress
from privtune.data.recognizers import Span
from privtune.data.redact import is_bare_label
from privtune.data.review import render_record, select_for_review, write_review_csv
from privtune.data.split import SPLITS, split_labels
from privtune.data.validate import DUPLICATE_ID, Rejection
from privtune.errors import InputError

log = logging.getLogger("privtune.data")

MAX_CLUSTERS_LISTED = 1000  # the manifest lists this many near-duplicate clusters (all are counted)


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _check_out(out: Path) -> None:
    """Replace an earlier dataset, never an unrelated directory (think `--out ~`)."""
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a directory", where=str(out))
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError("output directory exists, is not empty and is not a privtune dataset; refusing to "
                         "replace it (choose a new --out)", where=str(out))


def _text_slots(record: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) for every text of a record, so redacted text can be written back in place."""
    slots: list[tuple[Any, Any]] = [(m, "content") for m in record.get("messages", [])]
    return slots + [(record, k) for k in ("chosen", "rejected", "text") if k in record]


def _metadata_slots(meta: dict[str, Any], keep: set[str]) -> list[tuple[Any, Any, str]]:
    """(container, key, field name) for every value in a record's metadata that may hold personal data: every
    string, nested ones too, and numbers whose field name is an identifier's ("phone": 6172484867). Metadata is
    written to the splits with the record, so it is redacted like the text; the label fields in `keep` (the
    stratification field, privtune's own source_line) are not."""
    from privtune.data.recognizers import NO_PERSON, field_type

    out: list[tuple[Any, Any, str]] = []

    def walk(container: Any, key: Any, name: str) -> None:
        value = container[key]
        if isinstance(value, dict):
            for k in value:
                walk(value, k, str(k))
        elif isinstance(value, list):
            for j in range(len(value)):
                walk(value, j, name)
        elif isinstance(value, str) and value.strip() or (
                isinstance(value, int | float) and not isinstance(value, bool)
                and field_type(name)[0] not in (None, NO_PERSON)):
            out.append((container, key, name))

    for k in meta:
        if k not in keep:
            walk(meta, k, str(k))
    return out


@dataclass
class State:
    """What pass 1 keeps in RAM: counters and one small entry per spilled record."""

    rejections: list[Rejection] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    n_input: int = 0
    n_read_rejected: int = 0
    duplicates: int = 0
    seen_pre: set[bytes] = field(default_factory=set)
    seen_post: set[bytes] = field(default_factory=set)
    ids: dict[str, str] = field(default_factory=dict)  # id -> where (first use)
    labels: list[Any] = field(default_factory=list)
    has_pii: list[bool] = field(default_factory=list)
    in_keys: list[bytes | None] = field(default_factory=list)  # input hashes (shared with conflicts)
    categories: set[str] = field(default_factory=set)
    redactor_info: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    tokenizer: dict[str, Any] | None = None
    conflicts: q.ConflictTracker = field(default_factory=q.ConflictTracker)


# ------------------------------------------------------------------------------------------------ pass 1
def _stream_records(inputs: list[Path], cfg: PrepareConfig, st: State) -> Iterator[Record]:
    for path in inputs:
        n_rows, n_lines = 0, (_count_lines(path) if path.is_file() else 0)
        with progress(f"reading {path.name}", n_lines) as advance:
            last = 0
            for item in read_records(path, cfg):
                n_rows += 1
                advance(item.line - last)
                last = item.line
                if isinstance(item, Rejection):
                    if cfg.strict:
                        raise item.to_input_error()
                    st.rejections.append(item)
                    st.n_read_rejected += 1
                else:
                    yield item
        st.sources.append({"path": str(path.resolve()), "sha256": fsio.sha256_file(path), "n_lines": n_lines,
                           "n_records": n_rows})
        st.n_input += n_rows
        log.info("read %s: %d records (%d lines)", path.name, n_rows, n_lines)


def _chunks(items: Iterator[Record], n: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _reject(st: State, cfg: PrepareConfig, r: Record, reason: str, field_: str | None, message: str) -> None:
    rej = Rejection(r.source, r.line, reason, field_, message)
    if cfg.strict:
        raise rej.to_input_error()
    st.rejections.append(rej)


class Redaction:
    """Redacts chunks of records in place (label-like targets and category names are left alone)."""

    def __init__(self, cfg: PrepareConfig):
        self.cfg = cfg
        self.pool = None
        if cfg.engine == "ray":
            from privtune.data.ray_engine import RaySpans

            self.pool = RaySpans(cfg.redact, cfg.redact.workers)
        else:
            from privtune.data.redact import SpanPool

            self.pool = SpanPool(cfg.redact, cfg.redact.workers)
        from privtune.forget import subject_key

        self.subject_key = subject_key()
        self.info = {**self.pool.local.description, "enabled": True, "runner": cfg.engine,
                     "workers": cfg.redact.workers}

    def run(self, records: list[Record], allow: list[str]) -> list[tuple[Counter[str], list[str]]]:
        """Per record: (entity counts, subject fingerprints of the original values found)."""
        from privtune.forget import fingerprints

        slots = []  # (record index, container, key, prefix): a metadata value is read after its field name
        keep = {"source_line", "category", self.cfg.split.stratify_by or "category"}
        for i, r in enumerate(records):
            category = r.data.get("metadata", {}).get("category")
            for container, key in _text_slots(r.data):
                if (self.cfg.redact.protect_labels and container.get("role") == "assistant"
                        and is_bare_label(container[key], category)):
                    continue
                slots.append((i, container, key, ""))
            meta = r.data.get("metadata")
            if isinstance(meta, dict):
                slots += [(i, c, k, f"{name}: ") for c, k, name in _metadata_slots(meta, keep)]
        texts = [p + str(c[k]) for _, c, k, p in slots]
        n = max(1, self.cfg.redact.workers)
        size = max(1, -(-len(texts) // n))
        batches = [(texts[j:j + size], allow) for j in range(0, len(texts), size)]
        spans = [s for batch in self.pool.map(batches) for s in batch]
        out: list[tuple[Counter[str], list[str]]] = [(Counter(), []) for _ in records]
        values: list[list[str]] = [[] for _ in records]
        for (i, container, key, prefix), found in zip(slots, spans, strict=True):
            text = str(container[key])
            if prefix:  # back to offsets in the value; the field name itself is never redacted
                plen = len(prefix)
                found = [Span(max(s.start - plen, 0), s.end - plen, s.entity_type, s.score)
                         for s in found if s.end > plen]
            values[i] += [text[s.start:s.end] for s in found]
            out[i][0].update(s.entity_type for s in found)
            if found:  # a number with nothing found stays a number
                container[key] = self.pool.local.apply(text, found)
        for i, vals in enumerate(values):
            if vals:
                out[i] = (out[i][0], fingerprints(vals, self.subject_key))
        return out

    def close(self) -> None:
        self.pool.close()


def _pass1(inputs: list[Path], cfg: PrepareConfig, st: State, spill, near: NearDupIndex | None) -> None:
    redaction = Redaction(cfg) if cfg.redact.enabled else None
    if redaction is None:
        log.warning("redaction is disabled: the dataset keeps any personal data the inputs hold")
    else:
        st.redactor_info = redaction.info
    count_tokens = None
    if cfg.quality.enabled and cfg.quality.lengths:
        count_tokens = q.token_counter(cfg.base)
        st.tokenizer = count_tokens.base  # type: ignore[attr-defined]
    conflicts = st.conflicts
    track_conflicts = cfg.quality.enabled and cfg.quality.label_conflicts
    cat_field = cfg.split.stratify_by or "category"
    try:
        for chunk in _chunks(_stream_records(inputs, cfg, st), cfg.chunk_records):
            chunk = _dedup(chunk, cfg, st.seen_pre, st, "before redaction")
            for r in chunk:
                cat = r.data["metadata"].get("category")
                if isinstance(cat, str):
                    st.categories.add(cat)
            found = (redaction.run(chunk, sorted(st.categories)) if redaction
                     else [(Counter(), []) for _ in chunk])
            keep: list[tuple[Record, Counter[str], list[str]]] = []
            for r, (counts, fps) in zip(chunk, found, strict=True):
                if cfg.redact.operator == "drop" and counts:
                    _reject(st, cfg, r, q.PII_DROPPED, None, "contains personal data (redact.operator=drop): "
                            + ", ".join(sorted(counts)))
                    continue
                if not r.id_given:
                    r.data["id"] = stable_id(r.data)  # from the redacted content
                keep.append((r, counts, fps))
            kept_records = _dedup([k[0] for k in keep], cfg, st.seen_post, st, "after redaction")
            alive = {id(r) for r in kept_records}
            keep = [k for k in keep if id(k[0]) in alive]
            unique = []
            for item in keep:
                r = item[0]
                rid = str(r.data["id"])
                if rid in st.ids:
                    _reject(st, cfg, r, DUPLICATE_ID, "id", f"id already used by the record at {st.ids[rid]}")
                    continue
                st.ids[rid] = r.where
                unique.append(item)
            n_tokens = (count_tokens([q.record_text(r.data) for r, _, _ in unique]) if count_tokens
                        else [None] * len(unique))
            survivors = []
            for (r, counts, fps), n_tok in zip(unique, n_tokens, strict=True):
                verdict = q.check_quality(r.data, n_tok, cfg.quality) if cfg.quality.enabled else None
                if verdict is not None:
                    _reject(st, cfg, r, verdict.reason, verdict.field, verdict.message)
                    continue
                survivors.append((r, counts, fps, n_tok))
            if near is not None:
                near.add_many([content_text(r.data) for r, *_ in survivors])
            for r, counts, fps, n_tok in survivors:
                st.in_keys.append(conflicts.add(r.data) if track_conflicts else None)
                label = r.data["metadata"].get(cat_field)
                label = label if isinstance(label, str | int | float | bool) else (
                    None if label is None else json.dumps(label))
                st.labels.append(sys.intern(label) if isinstance(label, str) else label)  # a few distinct labels
                st.has_pii.append(bool(counts))
                spill.write(json.dumps({"r": r.data, "f": r.fmt, "w": [str(r.source), r.line], "e": dict(counts),
                                        "fp": fps, "t": n_tok}, ensure_ascii=False) + "\n")
    finally:
        if redaction is not None:
            redaction.close()


def _dedup(records: list[Record], cfg: PrepareConfig, seen: set[bytes], st: State, when: str) -> list[Record]:
    if not cfg.dedup.exact:
        return records
    kept = []
    for r in records:
        key = bytes.fromhex(content_key(r.data))[:16]
        if key in seen:
            st.duplicates += 1
            log.info("duplicate %s (%s)", r.where, when)
        else:
            seen.add(key)
            kept.append(r)
    return kept


# ------------------------------------------------------------------------------------------------ pass 2
def _weights(train_labels: list[Any], cfg: PrepareConfig) -> dict[str, Any] | None:
    """Inverse-frequency oversampling weights (largest class = 1), capped; for training to use."""
    if not cfg.split.balance:
        return None
    counts = Counter(str(x) for x in train_labels if x is not None)
    if not counts:
        return {"field": cfg.split.stratify_by, "weights": {}, "note": "no labels to balance"}
    top = max(counts.values())
    return {"field": cfg.split.stratify_by, "max_weight": cfg.split.max_weight, "method": "inverse_frequency",
            "weights": {k: round(min(cfg.split.max_weight, top / v), 4) for k, v in sorted(counts.items())}}


def prepare(inputs: list[Path], out: Path, cfg: PrepareConfig) -> dict[str, Any]:
    """Build the dataset directory `out` from `inputs`; returns the manifest (also written as manifest.json)."""
    from privtune.registry import crypto

    inputs, out = [Path(p) for p in inputs], Path(out)
    if not inputs:
        raise InputError("no input files given")
    _check_out(out)
    st = State()
    need = sum(p.stat().st_size for p in inputs if p.is_file()) * 2
    # The spill holds the records as they will be written (redacted when redaction is on). Unencrypted outputs
    # are that same plaintext on disk, so the spill goes to disk too: on tmpfs it held ~1.4 GB of RAM at 1M short
    # records. Encrypted outputs must never have a plaintext copy on disk: tmpfs then, as before.
    key = crypto.configured_key()
    with crypto.private_tmpdir("privtune-prepare-", need_bytes=need, in_memory=key is not None) as scratch:
        log.info("scratch (spill, MinHash signatures): %s", scratch)
        near = (NearDupIndex(cfg.dedup.threshold, cfg.dedup.ngram, cfg.dedup.num_perm, scratch / "minhash.bin")
                if cfg.dedup.near else None)
        with open(scratch / "spill.jsonl", "w", encoding="utf-8") as spill:
            _pass1(inputs, cfg, st, spill, near)
        if not st.labels:
            if st.n_read_rejected == st.n_input:
                reasons = Counter(r.reason for r in st.rejections)
                raise InputError(f"no valid records: all {st.n_input} were rejected ("
                                 + ", ".join(f"{k}={v}" for k, v in reasons.most_common()) + ")", where=str(inputs[0]))
            raise InputError(f"no records left after dedup and quality gates ({len(st.rejections)} rejected, "
                             f"{st.duplicates} duplicates)", where=str(inputs[0]))
        return _pass2(inputs, out, cfg, st, scratch / "spill.jsonl", near, key)


def _pass2(inputs: list[Path], out: Path, cfg: PrepareConfig, st: State, spill_path: Path,
           near: NearDupIndex | None, key: Any) -> dict[str, Any]:  # key: crypto.Key or None
    from privtune.forget import SUBJECT_INDEX, subject_index_line
    from privtune.registry import crypto, hooks
    from privtune.registry.store import record_dataset

    n = len(st.labels)
    conflicts = st.conflicts
    conflicted = [k is not None and conflicts.conflicting_key(k) for k in st.in_keys]
    st.in_keys = []
    clusters = near.clusters() if near is not None else []
    near_drop: dict[int, int] = {}  # dropped index -> kept index
    listed = []
    for group in clusters:
        alive = [i for i in group if not conflicted[i]]
        if len(alive) < 2:
            continue
        for i in alive[1:]:
            near_drop[i] = alive[0]
        listed.append(alive)
    final = [i for i in range(n) if not conflicted[i] and i not in near_drop]
    split = split_labels([st.labels[i] for i in final], cfg.split)
    note = split.note
    if note:
        log.warning("%s", note)
    assignment: list[str | None] = [None] * n  # by record index: a list, not a dict of a million ints
    for i, s in zip(final, split.assignment, strict=True):
        assignment[i] = s
    review = set(select_for_review([st.has_pii[i] for i in final], cfg.review_min, cfg.review_fraction,
                                   cfg.split.seed)) if cfg.redact.enabled else set()
    review_idx = {final[j] for j in review}
    weights = _weights([st.labels[i] for i in final if assignment[i] == "train"], cfg)

    cat_field = cfg.split.stratify_by or "category"
    counts_by_cat = {s: Counter() for s in SPLITS}
    split_n = Counter()
    redaction: Counter[str] = Counter()
    by_format: Counter[str] = Counter()
    lengths: dict[str, list[int]] = {s: [] for s in SPLITS}
    review_rows: list[dict[str, Any]] = []
    ids_of: dict[int, str] = {}
    cluster_members = {i for g in listed[:MAX_CLUSTERS_LISTED] for i in g}
    with fsio.staged_dir(out) as tmp, contextlib.ExitStack() as stack:
        # streamed straight to disk; with an encryption key (whole-file AES-GCM) they are buffered instead
        files = {s: f"{s}.jsonl" for s in SPLITS} | ({SUBJECT_INDEX: SUBJECT_INDEX} if cfg.redact.enabled else {})
        buffers: dict[str, list[str]] = {s: [] for s in files}
        handles = {} if key is not None else {s: stack.enter_context(fsio.atomic_open(tmp / name))
                                             for s, name in files.items()}
        def emit(name: str, text: str) -> None:
            if key is None:
                handles[name].write(text)
            else:
                buffers[name].append(text)

        with open(spill_path, encoding="utf-8") as fh, progress("writing splits", n) as advance:
            for i, line in enumerate(fh):
                advance(1)
                row = json.loads(line)
                rec = row["r"]
                if i in cluster_members:
                    ids_of[i] = str(rec["id"])
                if conflicted[i]:
                    src, ln = row["w"]
                    _reject(st, cfg, Record(Path(src), ln, row["f"], rec, True), q.LABEL_CONFLICT, "output",
                            "the same input appears with different outputs")
                    continue
                if i in near_drop:
                    continue
                s = assignment[i]
                emit(s, json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
                split_n[s] += 1
                label = rec["metadata"].get(cat_field)
                if label is not None:
                    counts_by_cat[s][str(label)] += 1
                redaction.update(row["e"])
                by_format[row["f"]] += 1
                if row["t"] is not None:
                    lengths[s].append(row["t"])
                if row["fp"]:  # only redaction fills it
                    emit(SUBJECT_INDEX, subject_index_line(str(rec["id"]), row["fp"]))
                if i in review_idx:
                    review_rows.append({"id": rec["id"], "split": s, "category": rec["metadata"].get(cat_field, ""),
                                        "redacted_text": render_record(rec), "entity_types": ";".join(sorted(row["e"])),
                                        "reviewer_verdict": "", "reviewer_notes": ""})
        stack.close()
        if key is not None:
            for s, name in files.items():
                crypto.write_text_maybe_encrypted(tmp / name, "".join(buffers[s]), key)
                buffers[s] = []
        st.rejections.sort(key=lambda r: (inputs.index(r.source) if r.source in inputs else 0, r.line))
        fsio.write_jsonl(tmp / "rejected.jsonl", (r.row() for r in st.rejections))
        if key is not None:
            import io

            buf = io.StringIO()
            _write_review(buf, review_rows)
            crypto.write_text_maybe_encrypted(tmp / "review.csv", buf.getvalue(), key)
        else:
            write_review_csv(tmp / "review.csv", review_rows)

        n_near = len(near_drop)
        counts = {
            "input": st.n_input, "valid": st.n_input - st.n_read_rejected, "rejected": len(st.rejections),
            "rejected_by_reason": dict(Counter(r.reason for r in st.rejections).most_common()),
            "duplicates": st.duplicates, "near_duplicates": n_near,
            **{s: split_n[s] for s in SPLITS},
            "by_category": {s: dict(sorted(counts_by_cat[s].items())) for s in SPLITS},
            "by_format": dict(sorted(by_format.items())),
        }
        total = counts["rejected"] + counts["duplicates"] + n_near + sum(split_n.values())
        assert total == st.n_input, counts
        manifest: dict[str, Any] = {
            "privtune_version": __version__, "schema_version": 2,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": cfg.model_dump(mode="json"), "sources": st.sources, "counts": counts,
            "split": {"seed": cfg.split.seed, "stratified_by": cfg.split.stratify_by if split.stratified_by else None,
                      "note": note, "category_field": cat_field},
            "balance": weights,
            "dedup": {"exact": cfg.dedup.exact, "near": cfg.dedup.near, "threshold": cfg.dedup.threshold,
                      "ngram": cfg.dedup.ngram, "num_perm": cfg.dedup.num_perm,
                      "lsh_bands": [near.bands, near.rows] if near is not None else None,
                      "clusters": len(listed), "removed": n_near,
                      "cluster_sizes": dict(sorted(Counter(len(g) for g in listed).items())),
                      "clusters_listed": [{"size": len(g), "kept": ids_of.get(g[0]),
                                           "dropped": [ids_of.get(i) for i in g[1:]]}
                                          for g in listed[:MAX_CLUSTERS_LISTED]]},
            "quality": {"enabled": cfg.quality.enabled, "tokenizer": st.tokenizer,
                        "min_tokens": cfg.quality.min_tokens, "max_tokens": cfg.quality.max_tokens,
                        "conflicting_inputs": conflicts.n_conflicting_inputs},
            "lengths": length_histogram(lengths),
            "redaction": dict(sorted(redaction.items())), "redactor": st.redactor_info,
            "encrypted": key is not None,
        }
        if cfg.canaries:  # after redaction (it would mask the secrets); secrets sealed outside card and manifest
            from privtune.audit.canaries import insert_canaries

            manifest["canaries"] = insert_canaries(tmp / "train.jsonl", cfg.canaries, cfg.split.seed, tmp, key=key)
        manifest["files"] = {p.name: crypto.sha256_plaintext(p, key) for p in sorted(tmp.iterdir())}
        manifest["plots"] = write_plots(tmp, manifest)
        fsio.write_text(tmp / "data_card.md", render_data_card(manifest))
        fsio.write_text(tmp / "data_card.html", render_data_card_html(manifest, tmp))
        for name in ["data_card.md", "data_card.html", *manifest["plots"]]:
            manifest["files"][name] = fsio.sha256_file(tmp / name)
        fsio.write_json(tmp / "manifest.json", manifest)
    manifest_sha = fsio.sha256_file(out / "manifest.json")
    record_dataset(out, manifest, manifest_sha)
    hooks.prepared(out, manifest)
    log.info("prepare: %d input, %d rejected, %d duplicates, %d near-duplicates → train %d / val %d / test %d in %s "
             "(manifest %s)", st.n_input, counts["rejected"], counts["duplicates"], n_near, counts["train"],
             counts["val"], counts["test"], out, manifest_sha[:12])
    if redaction:
        log.info("redacted: %s", ", ".join(f"{k}={v}" for k, v in redaction.most_common()))
    return manifest


def _write_review(fh, rows: list[dict[str, Any]]) -> None:
    import csv

    from privtune.data.review import COLUMNS, safe_cell

    writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: safe_cell(row.get(c)) for c in COLUMNS})
