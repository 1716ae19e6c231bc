"""`privtune quickstart`: the whole pipeline on the bundled bank-tickets example, offline, on the packaged model.

prepare (validate, redact, dedup, split) → train (LoRA SFT) → eval (base vs tuned on the held-out test split)
→ model card. Each stage is the same function its CLI verb calls, so the quickstart shows the real thing.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from privtune.config import QuickstartConfig

log = logging.getLogger(__name__)

HEADLINE = ("accuracy", "macro_f1", "exact_match", "token_f1", "rouge_l", "bleu")


def _pct(value: float | None, scale: float) -> str:
    return "-" if value is None else f"{value * scale:.1f}"


def _table(report: dict) -> Table:
    table = Table(title=f"base vs tuned on {report['n']} held-out test records (never seen in training)")
    for col in ("metric", "base", "tuned", "Δ"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for m in HEADLINE:
        if m not in report["tuned"]:
            continue
        b, t = report.get("base", {}).get(m), report["tuned"][m]
        scale = 1.0 if m == "bleu" else 100.0  # percentages for [0,1] metrics; BLEU is already 0–100
        delta = "-" if b is None else f"{(t - b) * scale:+.1f}"
        table.add_row(m, _pct(b, scale), _pct(t, scale), delta)
    return table


def quickstart(out: Path, cfg: QuickstartConfig, console: Console | None = None) -> dict:
    from privtune.data.prepare import prepare
    from privtune.evaluate.report import evaluate
    from privtune.examples import example_path
    from privtune.train.sft import train

    console = console or Console()
    t0 = time.time()
    out = Path(out)
    data_dir = out / "data"
    run_dir = out / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    source = example_path("bank_tickets")
    console.rule("[bold]privtune quickstart[/bold]: Harbor Crest Bank support-ticket triage (fictional data)")
    console.print(f"1/3 prepare  {source.name} → {data_dir}")
    manifest = prepare([source], data_dir, cfg.prepare)
    t_prep = time.time()
    c = manifest["counts"]
    red = sum(manifest.get("redaction", {}).values())
    console.print(f"    {c['valid']} valid records, {red} PII spans redacted, split {c['train']}/{c['val']}/{c['test']} "
                  f"({t_prep - t0:.0f}s)")
    console.print(f"2/3 train    LoRA on the packaged base model → {run_dir}  (training starts at +{t_prep - t0:.0f}s)")
    run = train(data_dir, run_dir, cfg.train)
    t_train = time.time()
    console.print(f"    best val loss {run['best_val_loss']:.4f} at epoch {run['best_epoch']} "
                  f"(from {run.get('initial_val_loss', float('nan')):.4f}; {t_train - t_prep:.0f}s)")
    console.print("3/3 eval     greedy generation on the test split, base and tuned")
    report = evaluate(run_dir, data_dir, cfg.eval, baseline=True, name="quickstart", print_table=False)
    from privtune.card import write_card

    card_md, _ = write_card(run_dir, intended_use="Demonstration: triage of fictional bank support tickets into "
                            "8 categories. Not for production use.", limitations=[
                                "Trained on 384 synthetic tickets; real customer language is more varied."])
    t_end = time.time()
    console.print(_table(report))
    report_dir = run_dir / "eval" / "quickstart"
    console.print(f"Reports: {report_dir / 'report.md'} (and report.json, predictions.jsonl)")
    console.print(f"Model card (EU AI Act Annex IV headings): {card_md} (and card.html)")
    console.print(f"Dataset: {data_dir} (manifest.json, data_card.md, review.csv)   Run: {run_dir}")
    console.print(f"Total {t_end - t0:.0f}s (prepare {t_prep - t0:.0f}s, train {t_train - t_prep:.0f}s, "
                  f"eval {t_end - t_train:.0f}s). `privtune runs` lists it.")
    return {"data_dir": str(data_dir), "run_dir": str(run_dir), "report": report, "manifest": manifest,
            "timings": {"prepare_s": t_prep - t0, "train_s": t_train - t_prep, "eval_s": t_end - t_train,
                        "total_s": t_end - t0}}
