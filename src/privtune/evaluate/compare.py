"""Score several systems (tuned, base) on the same records and compare them: overall, per category, confusion.

Pure functions over strings; report.py feeds them model outputs. Later additions (bootstrap confidence
intervals, significance of the deltas) belong here, next to `compare`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from privtune.evaluate import metrics

NO_CATEGORY = "(none)"


def delta(tuned: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float]:
    return {k: tuned[k] - base[k] for k in tuned if k in base}


def group_by_category(categories: Sequence[str | None]) -> dict[str, list[int]]:
    """Record indices per metadata.category, sorted by name; {} when no record has a category."""
    if all(c is None for c in categories):
        return {}
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(categories):
        groups.setdefault(NO_CATEGORY if c is None else c, []).append(i)
    return dict(sorted(groups.items()))


def compare(references: Sequence[str], outputs: Mapping[str, Sequence[str]], categories: Sequence[str | None],
            labels: Sequence[str] | None = None) -> dict:
    """{"<system>": metrics, ..., "delta" (tuned - base when both), "by_category", and for label tasks
    "per_label" ({system: {label: precision/recall/f1/support}}) and "confusion".

    `outputs` maps a system name ("tuned", "base") to its predictions, aligned with `references`.
    Label metrics use `labels` (the label set of ALL references) to map predictions, so a per-category score
    counts a prediction of another category's label as wrong, as it should.
    """
    out: dict = {name: metrics.score(preds, references, labels) for name, preds in outputs.items()}
    if "tuned" in out and "base" in out:
        out["delta"] = delta(out["tuned"], out["base"])
    by_cat = {}
    for cat, idx in group_by_category(categories).items():
        refs = [references[i] for i in idx]
        by_cat[cat] = {"n": len(idx)} | {
            name: metrics.score([preds[i] for i in idx], refs, labels) for name, preds in outputs.items()
        }
    out["by_category"] = by_cat
    if labels is not None:
        ref_labels = [metrics.label_key(r) for r in references]
        mapped = {name: [metrics.to_label(p, labels) for p in preds] for name, preds in outputs.items()}
        out["per_label"] = {name: metrics.per_label_scores(p, ref_labels, labels) for name, p in mapped.items()}
        out["confusion"] = {"labels": [*labels, metrics.OTHER]} | {
            name: metrics.confusion(p, ref_labels, labels) for name, p in mapped.items()
        }
    return out
