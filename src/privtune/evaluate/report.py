"""`privtune eval`: generate on held-out records with the tuned model (and the base with --baseline), score,
and write RUN_DIR/eval/NAME/{report.json, report.md, predictions.jsonl} atomically, then record it in the registry.

Inputs are all checked (run.json, adapter, every data line) before a model is loaded, and the output directory
is built in a temp sibling, so a bad input or a crash leaves no report behind.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import EvalConfig
from privtune.errors import InputError
from privtune.evaluate import metrics
from privtune.evaluate.compare import bootstrap, compare, worst_records
from privtune.evaluate.generate import (
    check_adapter_hash,
    generate_detailed,
    load_run_model,
    read_run_json,
    resolve_device,
    resolve_run_base,
)
from privtune.evaluate.overfit import detect as detect_overfitting
from privtune.evaluate.overfit import read_metrics
from privtune.evaluate.records import EvalRecord, load_records, resolve_data_file
from privtune.models import load_model
from privtune.registry import crypto

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
METRIC_ORDER = (*metrics.TEXT_METRICS, *metrics.LABEL_METRICS)
SYSTEMS = ("base", "tuned")


def eval_dir(run_dir: str | Path, name: str) -> Path:
    return Path(run_dir) / "eval" / name


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise InputError("must be 1-64 letters, digits, '.', '_' or '-', not starting with '.'", where="--name",
                         field="name")


def input_warnings(run_dir: Path, data_file: Path, run: dict[str, Any]) -> list[str]:
    """Things worth knowing about the inputs that are not reasons to refuse."""
    out = []
    dataset = (run.get("dataset") or {}).get("path")
    if dataset and data_file.resolve() == (Path(dataset) / "train.jsonl").resolve():
        out.append("evaluating on the training split: scores measure memorisation, not generalisation")
    if run.get("status", "finished") != "finished":
        out.append(f"the run's status is '{run.get('status')}': this is the best adapter saved before it stopped")
    from privtune.forget import retrain_reason

    if reason := retrain_reason(run_dir):
        out.append(f"the run is flagged retrain_required ({reason})")
    return out


# ------------------------------------------------------------------------------------------- stage
def evaluate(run_dir: Path, data: Path, cfg: EvalConfig, baseline: bool = False, name: str = "default", *,
             print_table: bool = True) -> dict:
    """Score the run's adapter (and the base, with `baseline`) on DATA; returns the report written.

    `print_table=False` leaves the summary table to a caller that prints its own (quickstart)."""
    import torch

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    _check_name(name)
    run = read_run_json(run_dir)
    check_adapter_hash(run_dir, run)
    data_file = resolve_data_file(data, cfg.split)
    in_file = load_records(data_file)
    records = in_file[:cfg.max_records] if cfg.max_records else in_file
    references = [r.reference for r in records]
    label_task = metrics.is_label_task(references) if cfg.label_task is None else cfg.label_task
    labels = metrics.label_set(references) if label_task else None
    warnings = input_warnings(run_dir, data_file, run)
    for w in warnings:
        log.warning(w)
    log.info("eval %s: %d records from %s (%s)", name, len(records), data_file.name,
             f"label task, {len(labels)} labels" if labels else "free text")

    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        t0 = time.perf_counter()
        model, tokenizer, run = load_run_model(run_dir, device=cfg.device)
        timings = {"load_s": time.perf_counter() - t0}
        prompts = [r.prompt for r in records]
        gens = {"tuned": generate_detailed(model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size,
                                           desc="tuned model")}
        if baseline and run.get("_artefact") == "model":  # a full fine-tune: the base is a separate model
            del model
            base_model = load_model(resolve_run_base(run_dir, run)).to(resolve_device(cfg.device)).eval()
            gens["base"] = generate_detailed(base_model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size,
                                             desc="base model")
        elif baseline:
            with model.disable_adapter():
                gens["base"] = generate_detailed(model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size,
                                                 desc="base model")
    finally:
        torch.set_num_threads(threads)  # a library call must not change the caller's process settings
    for system, g in gens.items():
        timings[f"generate_{system}_s"] = g.seconds

    t0 = time.perf_counter()
    outputs = {system: g.texts for system, g in gens.items()}
    scores = compare(references, outputs, [r.category for r in records], labels)
    timings["score_s"] = time.perf_counter() - t0
    if cfg.bootstrap_resamples and len(records) > 1:
        t0 = time.perf_counter()
        scores["bootstrap"] = bootstrap(references, outputs, labels, cfg.bootstrap_resamples, cfg.seed)
        timings["bootstrap_s"] = time.perf_counter() - t0
    scores["worst_examples"] = worst_examples(records, outputs, labels, cfg)
    loss_rows = read_metrics(run_dir)
    scores["overfitting"] = detect_overfitting(loss_rows, cfg.overfit_tolerance)
    if scores["overfitting"]["detected"]:
        warnings.append(scores["overfitting"]["message"])
        log.warning(scores["overfitting"]["message"])

    report = build_report(name, run_dir, run, data_file, len(in_file), records, cfg, labels, scores, gens, warnings)
    out_dir = eval_dir(run_dir, name)
    with fsio.staged_dir(out_dir) as tmp:
        write_predictions(tmp / "predictions.jsonl", prediction_rows(records, outputs, labels))
        fsio.write_text(tmp / "report.md", render_markdown(report, out_dir))
        if cfg.html:
            from privtune.evaluate.html import render_html

            t0 = time.perf_counter()
            fsio.write_text(tmp / "report.html", render_html(report, loss_rows))
            timings["html_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        report["timings"] = {k: round(v, 3) for k, v in timings.items()}
        fsio.write_json(tmp / "report.json", report)

    from privtune.registry import hooks
    from privtune.registry.store import record_eval

    record_eval(run_dir, name, out_dir / "report.json", report)
    hooks.evaluated(run_dir, out_dir / "report.json", report)
    if print_table:
        print_summary(report, out_dir)
    return report


def write_predictions(path: Path, rows) -> None:
    """Record text (redacted by prepare, still business data): encrypted when PRIVTUNE_KEY_FILE is set, like the
    dataset it came from. report.json/md hold only scores, label names, ids and hashes, so they stay plaintext."""
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    crypto.write_text_maybe_encrypted(path, body)


def build_report(name: str, run_dir: Path, run: dict, data_file: Path, records_in_file: int,
                 records: list[EvalRecord], cfg: EvalConfig, labels: list[str] | None, scores: dict, gens: dict,
                 warnings: list[str]) -> dict:
    base = run.get("_base") or run.get("base") or {}
    report: dict[str, Any] = {
        "n": len(records),
        "name": name,
        "data": {"path": str(data_file.resolve()), "sha256": crypto.sha256_plaintext(data_file),
                 "records_in_file": records_in_file},
        "run": {"path": str(run_dir.resolve()),
                "adapter_sha256": run.get("_adapter_sha256") or run.get("adapter_sha256"),
                "artefact": run.get("_artefact", "adapter"),  # "model": a full fine-tune, the hash is of model/
                "base_name": base.get("name"), "base_sha256": base.get("weights_sha256"),
                "dataset_manifest_sha256": (run.get("dataset") or {}).get("manifest_sha256")},
        "label_task": labels is not None,
        "labels": labels or [],
        "tuned": scores["tuned"],
    }
    if "base" in scores:
        report["base"] = scores["base"]
        report["delta"] = scores["delta"]
    if "bootstrap" in scores:
        boot = scores["bootstrap"]
        report["ci"] = boot["ci"]
        if "delta_ci" in boot:
            report["delta_ci"] = boot["delta_ci"]
            report["p_delta_le_0"] = boot["p_delta_le_0"]
        report["bootstrap"] = {k: boot[k] for k in ("n_resamples", "seed", "confidence")} | {
            "method": "paired percentile bootstrap over records"}
    report["by_category"] = scores["by_category"]
    if "confusion" in scores:
        report["per_label"] = scores["per_label"]
        report["confusion"] = scores["confusion"]
    report["generation"] = {
        "greedy": True, "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "mean_prompt_tokens": _mean(gens["tuned"].prompt_tokens),
        "mean_new_tokens": {s: _mean(g.new_tokens) for s, g in gens.items()},
        "hit_max_new_tokens": {s: sum(g.hit_limit) for s, g in gens.items()},
        "prompt_tokens_shared": {s: g.shared_prefix_tokens for s, g in gens.items()},
    }
    report["worst_examples"] = scores["worst_examples"]
    report["overfitting"] = scores["overfitting"]
    report["metric_scales"] = {m: "0-100 (sacrebleu)" if m == "bleu" else "0-1" for m in report["tuned"]}
    report["predictions_encrypted"] = crypto.configured_key() is not None
    report["warnings"] = warnings
    report["config"] = cfg.model_dump()
    report["privtune_version"] = __version__
    report["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def _mean(xs: list[int]) -> float:
    return round(sum(xs) / len(xs), 2) if xs else 0.0


def prediction_rows(records: list[EvalRecord], outputs: dict[str, list[str]], labels: list[str] | None):
    """One row per record; the test data was redacted by `prepare`, so its text may live in the run dir."""
    for i, r in enumerate(records):
        row = {"id": r.id, "category": r.category, "reference": r.reference,
               "tuned": outputs["tuned"][i], "base": outputs["base"][i] if "base" in outputs else None}
        if labels is not None:
            row["reference_label"] = metrics.label_key(r.reference)
            for system, preds in outputs.items():
                row[f"{system}_label"] = metrics.to_label(preds[i], labels)
        yield row


# ------------------------------------------------------------------------------------- worst examples
EXAMPLE_CHARS = 600  # enough of a prompt to see what went wrong, short enough for a report


@functools.lru_cache(maxsize=1)
def _redactor():
    from privtune.data.redact import Redactor

    return Redactor()


def _last_user(record: EvalRecord) -> str:
    return next((m["content"] for m in reversed(record.prompt) if m["role"] == "user"), "")


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " …"


def worst_examples(records: list[EvalRecord], outputs: dict[str, list[str]], labels: list[str] | None,
                   cfg: EvalConfig) -> list[dict]:
    """The tuned model's worst records with their scores. The text is passed through the redactor (eval data
    need not come from `prepare`); with encryption at rest configured it is left out (predictions.jsonl holds it,
    encrypted), since report.json/md/html are plaintext."""
    if not cfg.worst_examples:
        return []
    rows = worst_records([r.reference for r in records], outputs["tuned"], labels, cfg.worst_examples)
    out = []
    for i, s in rows:
        r = records[i]
        ex = {"id": r.id, "category": r.category, "line": r.line, "scores": {k: round(v, 4) for k, v in s.items()},
              "prompt": _clip(_last_user(r)), "reference": _clip(r.reference), "tuned": _clip(outputs["tuned"][i])}
        if "base" in outputs:
            ex["base"] = _clip(outputs["base"][i])
        out.append(ex)
    text_keys = ("prompt", "reference", "tuned", "base")
    if crypto.configured_key() is not None:
        for ex in out:
            for k in text_keys:
                ex.pop(k, None)
            ex["text"] = "omitted: data is encrypted at rest; see predictions.jsonl"
    elif cfg.redact_examples and out:
        slots = [(ex, k) for ex in out for k in text_keys if k in ex]
        redacted = _redactor().redact_texts([ex[k] for ex, k in slots])
        for (ex, k), (text, _) in zip(slots, redacted, strict=True):
            ex[k] = text
    for ex in out:
        ex["redacted"] = bool(cfg.redact_examples) and "text" not in ex
    return out


# ---------------------------------------------------------------------------------------- rendering
def fmt(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    digits = 2 if metric == "bleu" else 3
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def metric_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(metric, base, tuned, Δ) strings, in a fixed metric order."""
    base, delta = report.get("base") or {}, report.get("delta") or {}
    return [(m, fmt(m, base.get(m)), fmt(m, report["tuned"][m]), fmt(m, delta.get(m), signed=True))
            for m in METRIC_ORDER if m in report["tuned"]]


def headline_metrics(report: dict) -> list[str]:
    return ["accuracy", "macro_f1"] if report["label_task"] else ["token_f1", "rouge_l"]


def render_markdown(report: dict, out_dir: Path) -> str:
    has_base = "base" in report
    lines = [
        f"# privtune eval: {report['name']}", "",
        f"- records: {report['n']} from `{report['data']['path']}` (sha256 `{report['data']['sha256'][:12]}`)",
        f"- run: `{report['run']['path']}` (adapter sha256 `{str(report['run']['adapter_sha256'])[:12]}`)",
        f"- base model: {report['run']['base_name']} (weights sha256 `{str(report['run']['base_sha256'])[:12]}`)",
        f"- task: {'classification, ' + str(len(report['labels'])) + ' labels' if report['label_task'] else 'free text'}",
        f"- generation: greedy, max_new_tokens={report['generation']['max_new_tokens']}; answers that hit the limit: "
        + ", ".join(f"{s} {k}" for s, k in report["generation"]["hit_max_new_tokens"].items()),
        "",
    ]
    lines += [f"> warning: {w}" for w in report.get("warnings", [])]
    lines += ["", "## Scores", ""] if report.get("warnings") else ["## Scores", ""]
    if has_base:
        lines += ["| metric | base | tuned | Δ | 95% CI of Δ | |", "|---|---:|---:|---:|---:|---|"]
        lines += [f"| {m} | {b} | {t} | {d} | {ci_text(report, m)} | {verdict(report, m)} |"
                  for m, b, t, d in metric_rows(report)]
    else:
        lines += ["| metric | tuned | 95% CI |", "|---|---:|---:|"]
        lines += [f"| {m} | {t} | {ci_text(report, m, 'tuned')} |" for m, _, t, _ in metric_rows(report)]
    lines += ["", "All metrics are in [0, 1] except bleu (sacrebleu corpus BLEU, 0-100). "
              "Label metrics map each answer to a known label first; unmappable answers count as wrong."]
    if report.get("bootstrap"):
        b = report["bootstrap"]
        lines += [f"CIs: {b['method']}, {b['n_resamples']} resamples, seed {b['seed']}; a Δ whose CI excludes 0 "
                  "is marked better/worse."]
    lines.append("")
    lines += render_overfitting_md(report.get("overfitting") or {})
    if report["by_category"]:
        heads = headline_metrics(report)
        cols = [f"{s} {m}" for m in heads for s in (SYSTEMS if has_base else ("tuned",))]
        lines += ["## By category", "", "| category | n | " + " | ".join(cols) + " |",
                  "|---|---:|" + "---:|" * len(cols)]
        for cat, row in report["by_category"].items():
            cells = [fmt(m, row[s].get(m)) for m in heads for s in (SYSTEMS if has_base else ("tuned",))]
            lines.append(f"| {_md_cell(cat)} | {row['n']} | " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("per_label"):
        systems = [s for s in SYSTEMS if s in report["per_label"]]
        lines += ["## By label", "", "| label | support | " + " | ".join(f"{s} F1" for s in systems) + " |",
                  "|---|---:|" + "---:|" * len(systems)]
        for lab in report["labels"]:
            cells = [fmt("f1", report["per_label"][s][lab]["f1"]) for s in systems]
            lines.append(f"| {_md_cell(lab)} | {report['per_label']['tuned'][lab]['support']} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    lines += render_worst_md(report.get("worst_examples") or [], has_base)
    encrypted = " (encrypted at rest)" if report.get("predictions_encrypted") else ""
    lines += ["## Files", "",
              f"- `{out_dir / 'report.json'}`: every score, per-category scores"
              + (", per-label scores, confusion matrices" if report["label_task"] else "") + ", hashes, timings",
              f"- `{out_dir / 'predictions.jsonl'}`{encrypted}: reference and answers per record id",
              f"- `{out_dir / 'report.md'}`: this summary",
              f"- `{out_dir / 'report.html'}`: the same with loss curves, metric bars and confusion matrices", ""]
    return "\n".join(lines)


def ci_text(report: dict, metric: str, system: str | None = None) -> str:
    ci = (report.get("ci") or {}).get(system, {}).get(metric) if system else (report.get("delta_ci") or {}).get(metric)
    if not ci:
        return "-"
    return f"[{fmt(metric, ci[0], signed=system is None)}, {fmt(metric, ci[1], signed=system is None)}]"


def verdict(report: dict, metric: str) -> str:
    """'better' / 'worse' when the delta's CI excludes 0, '' otherwise (not distinguishable on this data)."""
    ci = (report.get("delta_ci") or {}).get(metric)
    if not ci:
        return ""
    return "better" if ci[0] > 0 else "worse" if ci[1] < 0 else "n.s."


def render_overfitting_md(ov: dict) -> list[str]:
    if not ov.get("epochs"):
        return []
    lines = ["## Training curve", ""]
    if ov.get("detected"):
        lines += [f"> **{ov['message']}**", ""]
    elif "best_epoch" in ov:
        lines += [f"No overfitting signal: best val loss {ov['best_val_loss']:.4f} at epoch {ov['best_epoch']}, "
                  f"last {ov['last_val_loss']:.4f} at epoch {ov['last_epoch']}.", ""]
    lines += ["| epoch | train loss | val loss | val − train |", "|---:|---:|---:|---:|"]
    for e in ov["epochs"]:
        t = "-" if e["train_loss"] is None else f"{e['train_loss']:.4f}"
        g = "-" if e["train_loss"] is None else f"{e['val_loss'] - e['train_loss']:+.4f}"
        mark = " (best)" if e["epoch"] == ov.get("best_epoch") else ""
        lines.append(f"| {e['epoch']}{mark} | {t} | {e['val_loss']:.4f} | {g} |")
    return [*lines, ""]


def render_worst_md(examples: list[dict], has_base: bool) -> list[str]:
    if not examples:
        return []
    lines = [f"## {len(examples)} worst examples (tuned model)", "",
             "Lowest-scoring test records" + (", text redacted" if examples[0].get("redacted") else "") + ".", ""]
    for ex in examples:
        s = ex["scores"]
        score = ", ".join(f"{k} {v:.2f}" for k, v in s.items())
        lines.append(f"### `{ex['id']}`" + (f" ({_md_cell(ex['category'])})" if ex.get("category") else "")
                     + f": {score}")
        if "text" in ex:
            lines += [f"- {ex['text']}", ""]
            continue
        lines += [f"- prompt: {_md_quote(ex['prompt'])}", f"- reference: {_md_quote(ex['reference'])}",
                  f"- tuned: {_md_quote(ex['tuned'])}"]
        if has_base and "base" in ex:
            lines.append(f"- base: {_md_quote(ex['base'])}")
        lines.append("")
    return lines


def _md_quote(text: str) -> str:
    return "`" + text.replace("`", "'").replace("\n", " ⏎ ") + "`" if text else "(empty)"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_summary(report: dict, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    has_base = "base" in report
    table = Table(title=f"eval '{report['name']}': {report['n']} records"
                  + (f", {len(report['labels'])} labels" if report["label_task"] else ""))
    table.add_column("metric")
    if has_base:
        table.add_column("base", justify="right")
    table.add_column("tuned", justify="right")
    if has_base:
        table.add_column("Δ", justify="right")
        table.add_column("95% CI of Δ", justify="right")
    for m, b, t, d in metric_rows(report):
        if has_base:
            v = verdict(report, m)  # colour only a difference the bootstrap CI separates from 0
            colour = "green" if v == "better" else "red" if v == "worse" else ""
            table.add_row(m, b, t, f"[{colour}]{d}[/]" if colour else d, ci_text(report, m))
        else:
            table.add_row(m, t)
    console = Console()
    console.print(table)
    for w in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"report: {out_dir / 'report.md'}" + (f" and {out_dir / 'report.html'}"
                                                        if (out_dir / "report.html").is_file() else ""))
