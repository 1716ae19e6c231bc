"""`privtune audit`: canary exposure, membership inference and PII regurgitation of a tuned run, with release gates.

Writes RUN_DIR/audit/{audit.json, audit.md} (staged, 0700/0600), appends an `audit` audit-log entry (outcome
`gate_failed` when a gate fails) and returns the report; the CLI exits 3 when a gate fails (2 stays "bad input"),
so a CI pipeline can block a release on it. A check that cannot run (no canaries were inserted, no test split)
is `skipped`, reported as such, and does not fail the audit.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import AuditConfig
from privtune.errors import InputError

log = logging.getLogger(__name__)
GATE_EXIT_CODE = 3


def audit_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "audit"


def _read_jsonl(path: Path) -> list[dict]:
    from privtune.registry import crypto

    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(crypto.read_text_maybe_encrypted(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg})", where=f"{path}:{i}") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise InputError("expected a chat record with 'messages'", where=f"{path}:{i}", field="messages")
        rows.append(row)
    return rows


def resolve_data_dir(run: dict, data: str | Path | None, run_dir: Path) -> Path:
    path = Path(data) if data else Path(str((run.get("dataset") or {}).get("path") or ""))
    if not str(path) or not path.is_dir():
        raise InputError("dataset directory not found; pass --data DIR (the directory `privtune prepare` wrote and "
                         "the run trained on)", where=str(path) if str(path) else str(run_dir / "run.json"),
                         field="dataset.path")
    if not (path / "train.jsonl").is_file():
        raise InputError("no train.jsonl: not a dataset written by `privtune prepare`", where=str(path / "train.jsonl"))
    return path


# ------------------------------------------------------------------------------------------ gates (pure)
def evaluate_gates(report: dict, cfg: AuditConfig) -> dict:
    """{gate: {value, threshold, passed (True/False, None = skipped), rule}} and "passed" overall."""
    can = report.get("canaries") or {}
    inserted = [c["exposure"] for c in can.get("results", []) if c["inserted"]]
    mia = report.get("membership") or {}
    aucs = [a["auc"] for a in (mia.get("attacks") or {}).values()]
    reg = report.get("regurgitation") or {}
    gates = {
        "canary_exposure": {"value": max(inserted) if inserted else None, "threshold": cfg.max_exposure_bits,
                            "rule": "max exposure of inserted canaries < threshold (bits)",
                            "passed": (max(inserted) < cfg.max_exposure_bits) if inserted else None},
        "membership_auc": {"value": max(aucs) if aucs else None, "threshold": cfg.max_mia_auc,
                           "rule": "max ROC AUC over the attacks < threshold",
                           "passed": (max(aucs) < cfg.max_mia_auc) if aucs else None},
        "regurgitation": {"value": reg.get("regurgitated"), "threshold": cfg.max_regurgitated,
                          "rule": "regurgitated identifiers <= threshold",
                          "passed": (reg["regurgitated"] <= cfg.max_regurgitated) if "regurgitated" in reg else None},
    }
    return {"passed": all(g["passed"] is not False for g in gates.values()), **gates}


# ------------------------------------------------------------------------------------------ stage
def audit(run_dir: str | Path, data: str | Path | None, cfg: AuditConfig) -> dict:
    import torch

    from privtune.audit import canaries as can
    from privtune.audit.membership import membership_inference
    from privtune.audit.regurgitation import regurgitation
    from privtune.evaluate.generate import check_adapter_hash, load_run_model, read_run_json
    from privtune.registry import crypto

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    check_adapter_hash(run_dir, run)
    data_dir = resolve_data_dir(run, data, run_dir)
    warnings: list[str] = []
    manifest = None
    if (data_dir / "manifest.json").is_file():
        manifest = json.loads(crypto.read_text_maybe_encrypted(data_dir / "manifest.json"))
        recorded = (run.get("dataset") or {}).get("manifest_sha256")
        if recorded and crypto.sha256_plaintext(data_dir / "manifest.json") != recorded:
            warnings.append("the dataset's manifest differs from the one the run trained on: results describe "
                            "this dataset, not necessarily the training data")
    train = _read_jsonl(data_dir / "train.jsonl")
    test = _read_jsonl(data_dir / "test.jsonl")
    members_all = [r for r in train if not (r.get("metadata") or {}).get("canary")]
    sealed = can.read_sealed(data_dir)

    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    timings: dict[str, float] = {}
    report: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        model, tokenizer, run = load_run_model(run_dir, device=cfg.device)
        timings["load_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        report["canaries"] = canary_section(model, tokenizer, sealed, cfg)
        timings["canaries_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        n = min(cfg.mia_max_records, len(members_all), len(test))
        if n >= 2:
            rng = random.Random(cfg.seed)
            report["membership"] = membership_inference(model, tokenizer, rng.sample(members_all, n),
                                                        rng.sample(test, n), cfg.min_k_fraction)
        else:
            report["membership"] = {"skipped": "needs at least 2 train and 2 test records"}
        timings["membership_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        report["regurgitation"] = regurgitation(model, tokenizer, members_all, manifest, cfg,
                                                {c.id: c.secret for c in (sealed[0] if sealed else [])})
        timings["regurgitation_s"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)

    gates = evaluate_gates(report, cfg)
    base = run.get("_base") or run.get("base") or {}
    full = {"passed": gates["passed"], "gates": gates,
            "run": {"path": str(run_dir.resolve()), "adapter_sha256": run.get("_adapter_sha256"),
                    "base_name": base.get("name"), "base_sha256": base.get("weights_sha256")},
            "data": {"path": str(data_dir.resolve()), "train_records": len(train),
                     "canary_records": len(train) - len(members_all), "test_records": len(test),
                     "manifest_sha256": crypto.sha256_plaintext(data_dir / "manifest.json") if manifest else None},
            **report, "warnings": warnings, "config": cfg.model_dump(mode="json"), "privtune_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out = audit_dir(run_dir)
    with fsio.staged_dir(out) as tmp:
        timings["total_s"] = time.perf_counter() - t_start
        full["timings"] = {k: round(v, 2) for k, v in timings.items()}
        fsio.write_json(tmp / "audit.json", full)
        fsio.write_text(tmp / "audit.md", render_markdown(full))

    from privtune.registry import hooks

    hooks.audited(run_dir, out / "audit.json", full["run"]["adapter_sha256"],
                  {k: {"value": v["value"], "passed": v["passed"]} for k, v in gates.items() if k != "passed"},
                  passed=gates["passed"])
    return full


def canary_section(model, tokenizer, sealed, cfg: AuditConfig) -> dict:
    from privtune.audit import canaries as can

    rng = random.Random(cfg.seed)
    controls = can.make_canaries(cfg.control_canaries, rng, repeats=(0,), prefix="control")
    inserted = sealed[0] if sealed else []
    if not inserted:
        note = "no canaries in the dataset (run `privtune prepare --canaries N`); only controls scored"
        if not controls:
            return {"skipped": note, "results": []}
    results = []
    from privtune.data.progress import progress

    todo = [*inserted, *controls]
    with progress("canary exposure", len(todo)) as advance:
        for c in todo:
            results.append(can.canary_exposure(model, tokenizer, c, cfg.canary_candidates, rng,
                                               cfg.canary_batch_size))
            advance(1)
    ins = [r["exposure"] for r in results if r["inserted"]]
    ctl = [r["exposure"] for r in results if not r["inserted"]]
    out = {"format": can.SECRET_FORMAT, "space_bits": round(can.space_bits(), 3),
           "candidates": cfg.canary_candidates, "results": results,
           "max_exposure": max(ins) if ins else None,
           "by_repeats": {str(k): {"n": sum(1 for r in results if r["repeats"] == k),
                                   "mean_exposure": round(sum(r["exposure"] for r in results if r["repeats"] == k)
                                                          / max(1, sum(1 for r in results if r["repeats"] == k)), 3)}
                          for k in sorted({r["repeats"] for r in results}, reverse=True)},
           "max_control_exposure": max(ctl) if ctl else None}
    if not inserted:
        out["note"] = note
    return out


# ------------------------------------------------------------------------------------------ rendering
def _status(passed: bool | None) -> str:
    return "PASS" if passed else "skipped" if passed is None else "**FAIL**"


def render_markdown(r: dict) -> str:
    g = r["gates"]
    lines = [f"# privtune audit: {'PASSED' if r['passed'] else 'FAILED'}", "",
             f"- run: `{r['run']['path']}` (adapter sha256 `{str(r['run']['adapter_sha256'])[:12]}`), base "
             f"{r['run']['base_name']}",
             f"- data: `{r['data']['path']}` ({r['data']['train_records']} train records, "
             f"{r['data'].get('canary_records', 0)} of them canaries; {r['data']['test_records']} test records)", ""]
    lines += [f"> warning: {w}" for w in r.get("warnings", [])]
    lines += ["## Gates", "", "| gate | value | threshold | rule | result |", "|---|---:|---:|---|---|"]
    for name in ("canary_exposure", "membership_auc", "regurgitation"):
        x = g[name]
        v = "-" if x["value"] is None else x["value"]
        lines.append(f"| {name} | {v} | {x['threshold']} | {x['rule']} | {_status(x['passed'])} |")
    lines.append("")

    c = r.get("canaries") or {}
    lines += ["## Canary exposure", ""]
    if c.get("skipped"):
        lines += [c["skipped"], ""]
    else:
        lines += [f"Secrets of format `{c['format']}` ({c['space_bits']} bits of randomness), each ranked by "
                  f"log-perplexity among ≥ {c['candidates']} random secrets of the same format in its own context. "
                  "Exposure = log2(#candidates) − log2(rank); beyond the candidates, skew-normal extrapolation. "
                  "Controls were never inserted: their exposure is what chance looks like.", ""]
        if c.get("note"):
            lines += [f"> {c['note']}", ""]
        lines += ["| canary | inserted × | exposure (bits) | rank | candidates | extrapolated |",
                  "|---|---:|---:|---:|---:|---|"]
        for x in c["results"]:
            lines.append(f"| {x['id']} | {x['repeats']} | {x['exposure']:.2f} | {x['rank']:g} | {x['candidates']} "
                         f"| {'yes' if x['extrapolated'] else ''} |")
        lines += ["", "| inserted × | canaries | mean exposure |", "|---:|---:|---:|"]
        lines += [f"| {k} | {v['n']} | {v['mean_exposure']:.2f} |" for k, v in c["by_repeats"].items()]
        lines.append("")

    m = r.get("membership") or {}
    lines += ["## Membership inference", ""]
    if m.get("skipped"):
        lines += [m["skipped"], ""]
    else:
        lines += [f"{m['members']} training records vs {m['nonmembers']} test records, scored on the answer tokens. "
                  "AUC 0.5 = the model does not tell members from non-members. The 95% interval (bootstrap over "
                  "records) shows how much of the AUC is noise at this sample size; the gate uses the point value.",
                  "", "| attack | ROC AUC | 95% CI | TPR @ 1% FPR | mean score (members) | mean score (non-members) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, a in m["attacks"].items():
            label = f"min-{int(round(m['k'] * 100))}% prob" if name == "min_k" else "loss"
            ci = a.get("auc_ci95")
            ci_text = f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "-"
            lines.append(f"| {label} | {a['auc']:.3f} | {ci_text} | {a['tpr_at_1pct_fpr']:.3f} | "
                         f"{a['mean_member']:.3f} | {a['mean_nonmember']:.3f} |")
        lines.append("")

    q = r.get("regurgitation") or {}
    lines += ["## PII regurgitation", "",
              f"{q.get('probes', 0)} prompts ({q.get('record_probes', 0)} training-record prefixes, "
              f"{q.get('generic_probes', 0)} extraction prompts), greedy, ≤ {q.get('max_new_tokens')} tokens; "
              f"detections matched against {q.get('matched_against')}. "
              f"{q.get('detections', 0)} identifiers detected, **{q.get('regurgitated', 0)} regurgitated**.", ""]
    if q.get("canary_secrets_emitted"):
        lines += [f"> **{len(q['canary_secrets_emitted'])} answers wrote out a canary's secret verbatim** ("
                  + ", ".join(f"{e['canary']} after {e['probe']}" for e in q["canary_secrets_emitted"]) + ")", ""]
    if q.get("findings"):
        lines += ["| prompt | type | value (masked) | in raw training data |", "|---|---|---|---|"]
        for f in q["findings"]:
            raw = "-" if f["in_raw_training_data"] is None else (f["raw_where"] or "no")
            lines.append(f"| {f['probe']} | {f['entity_type']} | `{f['value_masked']}` | {raw} |")
        lines.append("")
    lines += [f"Exit code when a gate fails: {GATE_EXIT_CODE}. Full results: `audit.json`.", ""]
    return "\n".join(lines)
