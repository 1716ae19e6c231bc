"""One call per stage that writes its audit-log entry with the hashes lineage needs.

The names are the contract with `privtune card` (which finds a run's entries by these hashes) and with an
auditor reading `privtune log show`: a dataset is its manifest sha256, a run its adapter sha256, a report its
file sha256. Call a hook after the stage's artefacts are complete; it raises if the log cannot be written
(fail closed: a regulated user prefers a failed command to an unrecorded one). Values that are not a sha256
(absent, None) are left out rather than invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.registry import auditlog, crypto

HEADLINE = ("accuracy", "macro_f1", "exact_match", "token_f1", "rouge_l", "bleu")


def _hashes(mapping: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if auditlog.is_sha256(v)}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def prepared(out_dir: str | Path, manifest: dict, *, outcome: str = "ok") -> dict:
    """After `privtune prepare` wrote OUT_DIR (manifest.json included)."""
    out_dir = Path(out_dir)
    sources = [s for s in manifest.get("sources", []) if isinstance(s, dict)]
    counts = manifest.get("counts") or {}
    red = manifest.get("redaction") or {}
    return auditlog.append(
        "prepare",
        inputs=_hashes({f"source:{s.get('path')}": s.get("sha256") for s in sources}),
        outputs=_hashes({"manifest": fsio.sha256_file(out_dir / "manifest.json"),
                         **{f"file:{k}": v.get("sha256") if isinstance(v, dict) else v
                            for k, v in (manifest.get("files") or {}).items()}}),
        outcome=outcome,
        details={"dataset_dir": str(out_dir.resolve()),
                 "counts": {k: v for k, v in counts.items() if isinstance(v, int)},
                 "redacted_spans": sum(v for v in red.values() if isinstance(v, int))})


def redacted(input_path: str | Path, out_path: str | Path, summary: dict) -> dict:
    """After `privtune redact` (entity counts only, never spans or text)."""
    return auditlog.append(
        "redact", inputs={"input": crypto.sha256_plaintext(input_path)},
        outputs={"output": crypto.sha256_plaintext(out_path)},
        details={"n": summary.get("n"), "redaction": summary.get("redaction", {})})


def trained(run_dir: str | Path, run: dict) -> dict:
    """After train wrote run.json (finished, failed or interrupted: the outcome is the run's status)."""
    run_dir = Path(run_dir)
    status = run.get("status", "finished")
    return auditlog.append(
        "train",
        inputs=_hashes({"dataset_manifest": _get(run, "dataset", "manifest_sha256"),
                        "base_weights": _get(run, "base", "weights_sha256")}),
        outputs=_hashes({"adapter": run.get("adapter_sha256"), "model": run.get("model_sha256"),  # model: full runs
                         "run.json": fsio.sha256_file(run_dir / "run.json")}),
        outcome="ok" if status == "finished" else str(status),
        details={"run_dir": str(run_dir.resolve()), "method": run.get("method"), "base": _get(run, "base", "name"),
                 "best_val_loss": run.get("best_val_loss"), "best_epoch": run.get("best_epoch"),
                 "dp_epsilon": _get(run, "dp", "epsilon"), "error": run.get("error")})


def evaluated(run_dir: str | Path, report_path: str | Path, report: dict) -> dict:
    """After eval wrote RUN_DIR/eval/NAME/report.json."""
    return auditlog.append(
        "eval",
        inputs=_hashes({"adapter": _get(report, "run", "adapter_sha256"), "data": _get(report, "data", "sha256")}),
        outputs={"report": fsio.sha256_file(report_path)},
        details={"run_dir": str(Path(run_dir).resolve()), "name": report.get("name"), "n": report.get("n"),
                 "tuned": {k: v for k, v in (report.get("tuned") or {}).items() if k in HEADLINE},
                 "base": {k: v for k, v in (report.get("base") or {}).items() if k in HEADLINE} or None})


def audited(run_dir: str | Path, audit_path: str | Path, adapter_sha256: str | None, gates: dict | None = None,
            *, passed: bool | None = None) -> dict:
    """After `privtune audit` wrote RUN_DIR/audit/audit.json; outcome records whether the gates passed."""
    return auditlog.append(
        "audit", inputs=_hashes({"adapter": adapter_sha256}), outputs={"audit": fsio.sha256_file(audit_path)},
        outcome="ok" if passed in (None, True) else "gate_failed",
        details={"run_dir": str(Path(run_dir).resolve()), "gates": gates or {}})


def exported(run_dir: str | Path, out_dir: str | Path, fmt: str, adapter_sha256: str | None) -> dict:
    """After `privtune export` wrote OUT_DIR."""
    return auditlog.append(
        "export", inputs=_hashes({"adapter": adapter_sha256}),
        outputs={"export": crypto.sha256_dir_plaintext(out_dir)},
        details={"run_dir": str(Path(run_dir).resolve()), "format": fmt, "out_dir": str(Path(out_dir).resolve())})


def serve_started(adapters: dict[str, str | None], host: str, port: int, *, forced: list[str] | None = None) -> dict:
    """When `privtune serve` has loaded its adapters (name → adapter sha256); `forced` = retrain_required overrides."""
    return auditlog.append(
        "serve.start", inputs=_hashes({f"adapter:{k}": v for k, v in adapters.items()}),
        details={"host": host, "port": port, "adapters": sorted(adapters), "forced_retrain_required": forced or []})


def serve_request(adapter: str, adapter_sha256: str | None, key_name: str, *, outcome: str = "ok",
                  prompt_tokens: int | None = None, completion_tokens: int | None = None,
                  request_id: str | None = None) -> dict:
    """One served request (who, which adapter, how much; never the text). Each append fsyncs: a few ms."""
    return auditlog.append(
        "serve.request", inputs=_hashes({f"adapter:{adapter}": adapter_sha256}), outcome=outcome,
        details={"key": key_name, "adapter": adapter, "prompt_tokens": prompt_tokens,
                 "completion_tokens": completion_tokens, "request_id": request_id})
