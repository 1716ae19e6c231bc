"""report.html: one self-contained page (inline CSS, figures as base64 PNG data URIs, no scripts, no external
assets), so it can be mailed, attached to a ticket or opened on an air-gapped machine."""

from __future__ import annotations

from html import escape

from privtune.evaluate import plots
from privtune.evaluate.report import (
    METRIC_ORDER,
    SYSTEMS,
    ci_text,
    fmt,
    headline_metrics,
    metric_rows,
    verdict,
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;
color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em;margin:.5em 0}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}.ns{color:#777}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
.ex{border:1px solid #e3e3e3;border-radius:4px;padding:.4em .8em;margin:.6em 0}
.ex div{margin:.2em 0;white-space:pre-wrap;word-break:break-word}.muted{color:#777}img{max-width:100%}
"""


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "".join(out) + "</table>"


def _img(uri: str | None, alt: str) -> str:
    return f'<p><img src="{uri}" alt="{escape(alt)}"></p>' if uri else ""


def render_html(report: dict, loss_rows: list[dict]) -> str:
    has_base = "base" in report
    run, data = report["run"], report["data"]
    parts = [f"<h1>privtune eval: {escape(report['name'])}</h1>", "<ul>",
             f"<li>records: {report['n']} from <code>{escape(data['path'])}</code> "
             f"(sha256 <code>{escape(data['sha256'][:12])}</code>)</li>",
             f"<li>run: <code>{escape(run['path'])}</code> (adapter <code>{escape(str(run['adapter_sha256'])[:12])}"
             f"</code>), base {escape(str(run['base_name']))}</li>",
             f"<li>task: {'classification, ' + str(len(report['labels'])) + ' labels' if report['label_task'] else 'free text'}"
             f"; greedy, max_new_tokens={report['generation']['max_new_tokens']}</li>", "</ul>"]
    parts += [f'<div class="warn">{escape(w)}</div>' for w in report.get("warnings", [])]

    parts.append("<h2>Scores</h2>")
    if has_base:
        rows = []
        for m, b, t, d in metric_rows(report):
            v = verdict(report, m)
            cls = {"better": "better", "worse": "worse", "n.s.": "ns"}.get(v, "")
            rows.append([m, b, t, f'<span class="{cls}">{d}</span>', ci_text(report, m), f'<span class="{cls}">{v}</span>'])
        parts.append(_table(["metric", "base", "tuned", "Δ (tuned − base)", "95% CI of Δ", ""], rows))
    else:
        parts.append(_table(["metric", "tuned", "95% CI"],
                            [[m, t, ci_text(report, m, "tuned")] for m, _, t, _ in metric_rows(report)]))
    if report.get("bootstrap"):
        b = report["bootstrap"]
        parts.append(f'<p class="muted">CIs: {escape(b["method"])}, {b["n_resamples"]} resamples, seed {b["seed"]}. '
                     "bleu is sacrebleu corpus BLEU on 0–100 (shown /100 in the chart); the rest are in [0, 1].</p>")
    parts.append(_img(plots.metric_bars({s: report[s] for s in SYSTEMS if s in report}, report.get("ci"),
                                        [m for m in METRIC_ORDER if m in report["tuned"]]), "metric bars"))

    ov = report.get("overfitting") or {}
    if loss_rows or ov.get("epochs"):
        parts.append("<h2>Training curve</h2>")
        if ov.get("detected"):
            parts.append(f'<div class="warn"><b>{escape(ov["message"])}</b></div>')
        parts.append(_img(plots.loss_curves(loss_rows, ov.get("best_epoch")), "loss curves"))
        if ov.get("epochs"):
            parts.append(_table(["epoch", "train loss", "val loss", "val − train"], [
                [str(e["epoch"]) + (" (best)" if e["epoch"] == ov.get("best_epoch") else ""),
                 "-" if e["train_loss"] is None else f"{e['train_loss']:.4f}", f"{e['val_loss']:.4f}",
                 "-" if e["train_loss"] is None else f"{e['val_loss'] - e['train_loss']:+.4f}"]
                for e in ov["epochs"]]))

    if report["by_category"]:
        heads = headline_metrics(report)
        systems = SYSTEMS if has_base else ("tuned",)
        parts.append("<h2>By category</h2>")
        parts.append(_table(["category", "n"] + [f"{s} {m}" for m in heads for s in systems], [
            [escape(cat), str(row["n"])] + [fmt(m, row[s].get(m)) for m in heads for s in systems]
            for cat, row in report["by_category"].items()]))

    if report.get("confusion"):
        conf = report["confusion"]
        parts.append("<h2>Confusion matrices</h2><p class=\"muted\">Rows: reference label; columns: predicted "
                     "label (<code>&lt;other&gt;</code> = an answer that maps to no label).</p>")
        for s in SYSTEMS:
            if s in conf:
                parts.append(_img(plots.confusion_heatmap(conf["labels"], conf[s], f"{s} model"), f"{s} confusion"))
    if report.get("per_label"):
        systems = [s for s in SYSTEMS if s in report["per_label"]]
        parts.append("<h2>By label</h2>")
        parts.append(_table(["label", "support"] + [f"{s} {k}" for s in systems for k in ("precision", "recall", "F1")],
                            [[escape(lab), str(report["per_label"]["tuned"][lab]["support"])]
                             + [fmt("f1", report["per_label"][s][lab][k]) for s in systems
                                for k in ("precision", "recall", "f1")] for lab in report["labels"]]))

    worst = report.get("worst_examples") or []
    if worst:
        parts.append(f"<h2>{len(worst)} worst examples (tuned model)</h2>")
        if worst[0].get("redacted"):
            parts.append('<p class="muted">Text passed through the PII redactor.</p>')
        for ex in worst:
            score = ", ".join(f"{k} {v:.2f}" for k, v in ex["scores"].items())
            body = [f"<div><b class=\"mono\">{escape(ex['id'])}</b>"
                    + (f" ({escape(ex['category'])})" if ex.get("category") else "") + f" — {score}</div>"]
            if "text" in ex:
                body.append(f'<div class="muted">{escape(ex["text"])}</div>')
            else:
                body += [f"<div><b>{k}:</b> <span class=\"mono\">{escape(ex[k]) or '(empty)'}</span></div>"
                         for k in ("prompt", "reference", "tuned", "base") if k in ex]
            parts.append('<div class="ex">' + "".join(body) + "</div>")
    parts.append(f'<p class="muted">privtune {escape(report.get("privtune_version", ""))}, '
                 f'{escape(report.get("created_at", ""))}</p>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>privtune eval: {escape(report['name'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
