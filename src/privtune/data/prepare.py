"""`privtune prepare`: read → validate → redact → dedup → split → write a dataset directory.

The directory is built in a temporary sibling and renamed into place (fsio.staged_dir), so it appears
complete or not at all; any InputError (an unreadable file, zero valid records, a rejection under
--strict) leaves nothing behind.

Exact duplicates are removed twice: before redaction (copies that differ only in case or spacing may
redact differently, and there is less to redact) and after it (records that differ only in their personal
data become identical). Ids are derived from the redacted content, so no id is a function of raw PII.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import PrepareConfig
from privtune.data.card import render_data_card
from privtune.data.dedup import content_key, exact_dedup
from privtune.data.formats import Record, read_records, stable_id
from privtune.data.progress import progress
from privtune.data.review import render_record, select_for_review, write_review_csv
from privtune.data.split import SPLITS, split_records
from privtune.data.validate import DUPLICATE_ID, Rejection
from privtune.errors import InputError

log = logging.getLogger("privtune.data")

REDACT_CHUNK = 512  # texts per redaction call (one progress step)


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


def read_inputs(inputs: list[Path], cfg: PrepareConfig) -> tuple[list[Record], list[Rejection], list[dict]]:
    """Every input's records and rejections, plus per-source provenance; raises on unreadable files."""
    records: list[Record] = []
    rejections: list[Rejection] = []
    sources: list[dict[str, Any]] = []
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
                    rejections.append(item)
                else:
                    records.append(item)
        sources.append({"path": str(path.resolve()), "sha256": fsio.sha256_file(path), "n_lines": n_lines,
                        "n_records": n_rows})
        log.info("read %s: %d records (%d lines)", path.name, n_rows, n_lines)
    return records, rejections, sources


def _text_slots(record: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) for every text of a record, so redacted text can be written back in place."""
    slots: list[tuple[Any, Any]] = [(m, "content") for m in record.get("messages", [])]
    return slots + [(record, k) for k in ("chosen", "rejected", "text") if k in record]


def redact_records(records: list[Record], cfg: PrepareConfig) -> tuple[list[Counter[str]], dict[str, Any]]:
    """Redact every text field in place; per-record entity counts and the redactor's description."""
    from privtune.data.redact import Redactor

    redactor = Redactor(cfg.redact)
    slots = [(i, slot) for i, r in enumerate(records) for slot in _text_slots(r.data)]
    counts: list[Counter[str]] = [Counter() for _ in records]
    with progress("redacting", len(slots)) as advance:
        for start in range(0, len(slots), REDACT_CHUNK):
            chunk = slots[start:start + REDACT_CHUNK]
            results = redactor.redact_texts([container[key] for _, (container, key) in chunk])
            for (i, (container, key)), (text, found) in zip(chunk, results, strict=True):
                container[key] = text
                counts[i].update(found)
            advance(len(chunk))
    return counts, {"enabled": True, **redactor.description}


def _dedup(records: list[Record], cfg: PrepareConfig, when: str) -> tuple[list[Record], int]:
    if not cfg.dedup.exact:
        return records, 0
    result = exact_dedup(records, key=lambda r: content_key(r.data))
    for dup, first in result.duplicates:
        log.info("duplicate %s of %s (%s)", dup.where, first.where, when)
    return result.kept, len(result.duplicates)


def prepare(inputs: list[Path], out: Path, cfg: PrepareConfig) -> dict[str, Any]:
    """Build the dataset directory `out` from `inputs`; returns the manifest (also written as manifest.json)."""
    inputs, out = [Path(p) for p in inputs], Path(out)
    if not inputs:
        raise InputError("no input files given")
    _check_out(out)
    records, rejections, sources = read_inputs(inputs, cfg)
    n_input = sum(s["n_records"] for s in sources)
    if not records:
        reasons = Counter(r.reason for r in rejections)
        raise InputError(f"no valid records: all {n_input} were rejected ("
                         + ", ".join(f"{k}={v}" for k, v in reasons.most_common()) + ")", where=str(inputs[0]))

    records, n_dup = _dedup(records, cfg, "before redaction")
    if cfg.redact.enabled:
        entity_counts, redactor_info = redact_records(records, cfg)
    else:
        entity_counts, redactor_info = [Counter() for _ in records], {"enabled": False}
        log.warning("redaction is disabled: the dataset keeps any personal data the inputs hold")
    for r in records:
        if not r.id_given:
            r.data["id"] = stable_id(r.data)  # from the redacted content
    index = {id(r): i for i, r in enumerate(records)}
    kept, n_dup_after = _dedup(records, cfg, "after redaction")
    n_dup += n_dup_after

    unique: list[Record] = []
    seen: dict[str, Record] = {}
    for r in kept:
        if r.data["id"] in seen:
            rej = Rejection(r.source, r.line, DUPLICATE_ID, "id",
                            f"id already used by the record at {seen[r.data['id']].where}")
            if cfg.strict:
                raise rej.to_input_error()
            rejections.append(rej)
        else:
            seen[r.data["id"]] = r
            unique.append(r)

    result = split_records([r.data["metadata"] for r in unique], cfg.split)
    if result.note:
        log.warning("%s", result.note)
    splits: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r, name in zip(unique, result.assignment, strict=True):
        splits[name].append(r)

    cat_field = cfg.split.stratify_by or "category"
    redaction: Counter[str] = Counter()
    for r in unique:
        redaction.update(entity_counts[index[id(r)]])
    counts = {
        "input": n_input, "valid": n_input - len(rejections), "rejected": len(rejections),
        "rejected_by_reason": dict(Counter(r.reason for r in rejections).most_common()),
        "duplicates": n_dup,
        **{s: len(splits[s]) for s in SPLITS},
        "by_category": {s: dict(sorted(Counter(str(r.data["metadata"].get(cat_field)) for r in splits[s]
                                               if r.data["metadata"].get(cat_field) is not None).items()))
                        for s in SPLITS},
        "by_format": dict(sorted(Counter(r.fmt for r in unique).items())),
    }
    assert counts["valid"] == counts["duplicates"] + sum(counts[s] for s in SPLITS), counts
    rejections.sort(key=lambda r: (inputs.index(r.source) if r.source in inputs else 0, r.line))

    manifest: dict[str, Any] = {
        "privtune_version": __version__, "schema_version": 1,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json"), "sources": sources, "counts": counts,
        "split": {"seed": cfg.split.seed, "stratified_by": result.stratified_by, "note": result.note,
                  "category_field": cat_field},
        "redaction": dict(sorted(redaction.items())), "redactor": redactor_info,
    }
    with fsio.staged_dir(out) as tmp:
        for s in SPLITS:
            fsio.write_jsonl(tmp / f"{s}.jsonl", (r.data for r in splits[s]))
        fsio.write_jsonl(tmp / "rejected.jsonl", (r.row() for r in rejections))
        write_review_csv(tmp / "review.csv", _review_rows(splits, entity_counts, index, cfg))
        manifest["files"] = {p.name: fsio.sha256_file(p) for p in sorted(tmp.iterdir())}
        fsio.write_text(tmp / "data_card.md", render_data_card(manifest))
        manifest["files"]["data_card.md"] = fsio.sha256_file(tmp / "data_card.md")
        fsio.write_json(tmp / "manifest.json", manifest)
    manifest_sha = fsio.sha256_file(out / "manifest.json")

    from privtune.registry.store import record_dataset

    record_dataset(out, manifest, manifest_sha)
    log.info("prepare: %d input, %d rejected, %d duplicates → train %d / val %d / test %d in %s (manifest %s)",
             n_input, counts["rejected"], counts["duplicates"], counts["train"], counts["val"], counts["test"],
             out, manifest_sha[:12])
    if redaction:
        log.info("redacted: %s", ", ".join(f"{k}={v}" for k, v in redaction.most_common()))
    return manifest


def _review_rows(splits: dict[str, list[Record]], entity_counts: list[Counter[str]], index: dict[int, int],
                 cfg: PrepareConfig) -> list[dict[str, Any]]:
    if not cfg.redact.enabled:
        return []  # nothing was redacted, so there is nothing to review and no text that is safe to show
    items = [(s, r) for s in SPLITS for r in splits[s]]
    found = [entity_counts[index[id(r)]] for _, r in items]
    chosen = select_for_review([bool(c) for c in found], cfg.review_min, cfg.review_fraction, cfg.split.seed)
    cat_field = cfg.split.stratify_by or "category"
    return [{"id": items[i][1].data["id"], "split": items[i][0],
             "category": items[i][1].data["metadata"].get(cat_field, ""),
             "redacted_text": render_record(items[i][1].data),
             "entity_types": ";".join(sorted(found[i])), "reviewer_verdict": "", "reviewer_notes": ""}
            for i in chosen]
