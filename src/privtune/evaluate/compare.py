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


# ------------------------------------------------------------------------------------- bootstrap CIs
def per_record(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str] | None) -> dict:
    """What the paired bootstrap resamples: per-record scores for the averaged metrics, BLEU's sufficient
    statistics (corpus BLEU is not a mean of sentence scores), label indices for macro-F1."""
    import numpy as np
    from sacrebleu.metrics import BLEU

    out = {"exact_match": np.array([metrics.exact_match(p, r) for p, r in zip(predictions, references, strict=True)]),
           "token_f1": np.array([metrics.token_f1(p, r) for p, r in zip(predictions, references, strict=True)]),
           "rouge_l": np.array(metrics.rouge_l(predictions, references)),
           "bleu_stats": np.array(BLEU(effective_order=True)._extract_corpus_statistics(
               list(predictions), [list(references)]), dtype=np.int64)}
    if labels is not None:
        order = {lab: i for i, lab in enumerate([*labels, metrics.OTHER])}
        out["pred_idx"] = np.array([order[metrics.to_label(p, labels)] for p in predictions])
        out["ref_idx"] = np.array([order.get(metrics.label_key(r), len(labels)) for r in references])
        out["accuracy"] = (out["pred_idx"] == out["ref_idx"]).astype(float)
    return out


def _bleu_from_stats(stats) -> float:
    from sacrebleu.metrics import BLEU

    return float(BLEU.compute_bleu(correct=stats[2:6].tolist(), total=stats[6:10].tolist(), sys_len=int(stats[0]),
                                   ref_len=int(stats[1]), smooth_method="exp", effective_order=True).score)


def _macro_f1(pred, ref, n_classes: int, present) -> float:
    """Macro-F1 over the reference labels `present` (like metrics.classification_scores), via counts."""
    import numpy as np

    tp = np.bincount(ref[pred == ref], minlength=n_classes)[present]
    npred = np.bincount(pred, minlength=n_classes)[present]
    nref = np.bincount(ref, minlength=n_classes)[present]
    denom = npred + nref
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1.mean()) if len(present) else 0.0


def resampled_scores(rec: dict, idx, present) -> dict[str, float]:
    """Every metric of one system on one resample (`idx`: record indices drawn with replacement)."""
    out = {m: float(rec[m][idx].mean()) for m in ("exact_match", "token_f1", "rouge_l")}
    out["bleu"] = _bleu_from_stats(rec["bleu_stats"][idx].sum(axis=0))
    if "pred_idx" in rec:
        out["accuracy"] = float(rec["accuracy"][idx].mean())
        n_classes = int(max(rec["pred_idx"].max(), rec["ref_idx"].max())) + 1
        out["macro_f1"] = _macro_f1(rec["pred_idx"][idx], rec["ref_idx"][idx], n_classes, present)
    return out


def bootstrap(references: Sequence[str], outputs: Mapping[str, Sequence[str]], labels: Sequence[str] | None = None,
              n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Paired bootstrap over records: the same resampled records score every system, so the CI of
    tuned − base reflects the per-record pairing (much tighter than two independent CIs).

    Returns {"ci": {system: {metric: [lo, hi]}}, "delta_ci": {metric: [lo, hi]} (with tuned and base),
    "p_delta_le_0": {metric: share of resamples where tuned − base ≤ 0}, "n_resamples", "seed", "confidence"}.
    Percentile intervals; macro-F1 is averaged over the labels present in the full reference set, as in `score`.
    """
    import numpy as np

    n = len(references)
    recs = {name: per_record(preds, references, labels) for name, preds in outputs.items()}
    present = None
    if labels is not None:
        present = np.unique(next(iter(recs.values()))["ref_idx"])
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list[float]]] = {name: {} for name in recs}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        for name, rec in recs.items():
            for m, v in resampled_scores(rec, idx, present).items():
                draws[name].setdefault(m, []).append(v)
    alpha = (1 - confidence) / 2

    def interval(values) -> list[float]:
        lo, hi = np.quantile(np.asarray(values), [alpha, 1 - alpha])
        return [round(float(lo), 6), round(float(hi), 6)]

    out: dict = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence,
                 "ci": {name: {m: interval(v) for m, v in d.items()} for name, d in draws.items()}}
    if "tuned" in draws and "base" in draws:
        diffs = {m: np.asarray(draws["tuned"][m]) - np.asarray(draws["base"][m]) for m in draws["tuned"]}
        out["delta_ci"] = {m: interval(d) for m, d in diffs.items()}
        out["p_delta_le_0"] = {m: round(float((d <= 0).mean()), 4) for m, d in diffs.items()}
    return out


# ------------------------------------------------------------------------------------- worst examples
def worst_records(references: Sequence[str], predictions: Sequence[str], labels: Sequence[str] | None,
                  k: int = 10) -> list[tuple[int, dict[str, float]]]:
    """The k records the system did worst on: (index, its scores), worst first. Label tasks rank wrong labels
    first; ties (and free text) break on token F1, then ROUGE-L, then record order."""
    rl = metrics.rouge_l(predictions, references)
    rows = []
    for i, (p, r) in enumerate(zip(predictions, references, strict=True)):
        s = {"exact_match": metrics.exact_match(p, r), "token_f1": metrics.token_f1(p, r), "rouge_l": rl[i]}
        if labels is not None:
            s["correct"] = float(metrics.to_label(p, labels) == metrics.label_key(r))
        rows.append((i, s))
    rows.sort(key=lambda x: (x[1].get("correct", 0.0), x[1]["token_f1"], x[1]["rouge_l"], x[0]))
    return rows[:k]
