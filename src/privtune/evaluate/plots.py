"""Report figures as base64 PNG data URIs (matplotlib, Agg backend: no display, no external assets).

Each function takes report data and returns `data:image/png;base64,...` or None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_uri(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def loss_curves(rows: list[dict], best_epoch: int | None = None) -> str | None:
    """Train loss per logged step and val loss at each evaluation, against the epoch."""
    train = [(r["epoch"], r["train_loss"]) for r in rows
             if isinstance(r.get("train_loss"), int | float) and isinstance(r.get("epoch"), int | float)]
    val = [(r["epoch"], r["val_loss"]) for r in rows
           if isinstance(r.get("val_loss"), int | float) and isinstance(r.get("epoch"), int | float)]
    if not train and not val:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", color="#1f77b4", linewidth=1.2)
    if val:
        ax.plot(*zip(*val, strict=True), label="val loss", color="#d62728", marker="o", linewidth=1.5)
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (per supervised token)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _to_uri(fig)


def metric_bars(scores: dict[str, dict[str, float]], ci: dict[str, dict[str, list[float]]] | None,
                metrics: list[str]) -> str | None:
    """Base vs tuned bars per metric with bootstrap CI error bars (BLEU, on 0–100, is shown divided by 100)."""
    systems = [s for s in ("base", "tuned") if s in scores]
    metrics = [m for m in metrics if all(m in scores[s] for s in systems)]
    if not metrics:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(metrics) + 1.5), 3.6))
    width = 0.8 / len(systems)
    colours = {"base": "#9e9e9e", "tuned": "#2ca02c"}
    for j, s in enumerate(systems):
        scale = [100.0 if m == "bleu" else 1.0 for m in metrics]
        vals = [scores[s][m] / k for m, k in zip(metrics, scale, strict=True)]
        err = None
        if ci and s in ci:
            lo = [max(0.0, v - ci[s][m][0] / k) for v, m, k in zip(vals, metrics, scale, strict=True)]
            hi = [max(0.0, ci[s][m][1] / k - v) for v, m, k in zip(vals, metrics, scale, strict=True)]
            err = [lo, hi]
        xs = [i + (j - (len(systems) - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, vals, width=width, label=s, color=colours[s], yerr=err, capsize=3)
    ax.set_xticks(range(len(metrics)), [f"{m} (/100)" if m == "bleu" else m for m in metrics], rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (error bars: 95% bootstrap CI)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _to_uri(fig)


def confusion_heatmap(labels: list[str], matrix: list[list[int]], title: str) -> str:
    """Rows = reference label, columns = predicted label, counts written in the cells. The last label is
    `<other>`: a column (answers that map to no label) but never a reference, so it gets no row."""
    import numpy as np

    plt = _plt()
    m = np.asarray(matrix)[:-1]
    size = 1.6 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels) - 1), labels[:-1])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    threshold = m.max() / 2 if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center",
                        color="white" if m[i, j] > threshold else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _to_uri(fig)
