"""Overfitting detection from the run's metrics.jsonl: val loss rising while train loss falls.

Train logs a row per `log_every` optimizer steps (train_loss over the steps since the last row) and a row at
each epoch end carrying val_loss. Per epoch we take the val loss at its end and the train loss averaged over
its rows; overfitting = the last epoch's val loss is above the best one (by more than `tolerance`, relative)
while its train loss is below the best epoch's. Train keeps the best adapter, so the warning says which epoch
that is and how wide the train/val gap has grown — the signal to stop earlier or regularise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class EpochLoss:
    epoch: int
    train_loss: float | None
    val_loss: float


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl rows (plaintext or encrypted at rest); [] when the run has none or a line is unreadable."""
    from privtune.registry import crypto

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in crypto.read_text_maybe_encrypted(path).splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a crash mid-append leaves at most a torn last line; the others still tell the story
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _num(x) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def epoch_losses(rows: list[dict]) -> list[EpochLoss]:
    """One entry per epoch that has a val loss (epoch k covers logged epochs in (k-1, k])."""
    train: dict[int, list[float]] = {}
    val: dict[int, float] = {}
    for r in rows:
        ep = _num(r.get("epoch"))
        if ep is None or ep <= 0:
            continue
        k = max(1, math.ceil(ep - 1e-9))
        if (t := _num(r.get("train_loss"))) is not None:
            train.setdefault(k, []).append(t)
        if (v := _num(r.get("val_loss"))) is not None:
            val[k] = v
    return [EpochLoss(k, sum(train[k]) / len(train[k]) if train.get(k) else None, val[k]) for k in sorted(val)]


def detect(rows: list[dict], tolerance: float = 0.01) -> dict:
    """{"detected", "epochs", and when there are ≥ 2 epochs: "best_epoch", "best_val_loss", "last_epoch",
    "last_val_loss", "gap_at_best", "gap_at_last" (val − train), "message"}."""
    epochs = epoch_losses(rows)
    out: dict = {"detected": False, "epochs": [asdict(e) for e in epochs]}
    if len(epochs) < 2:
        return out
    best = min(epochs, key=lambda e: (e.val_loss, e.epoch))
    last = epochs[-1]

    def gap(e: EpochLoss) -> float | None:
        return None if e.train_loss is None else round(e.val_loss - e.train_loss, 4)

    out |= {"best_epoch": best.epoch, "best_val_loss": round(best.val_loss, 4), "last_epoch": last.epoch,
            "last_val_loss": round(last.val_loss, 4), "gap_at_best": gap(best), "gap_at_last": gap(last)}
    rising = last.epoch != best.epoch and last.val_loss > best.val_loss * (1 + tolerance)
    falling = (last.train_loss is not None and best.train_loss is not None and last.train_loss < best.train_loss)
    if rising and falling:
        out["detected"] = True
        out["message"] = (
            f"overfitting: val loss rose from {best.val_loss:.4f} (best, epoch {best.epoch}) to {last.val_loss:.4f} "
            f"(epoch {last.epoch}) while train loss fell from {best.train_loss:.4f} to {last.train_loss:.4f}; "
            f"the val−train gap grew from {gap(best):+.4f} to {gap(last):+.4f}. The adapter kept is epoch "
            f"{best.epoch}'s; train fewer epochs, lower the learning rate or add data")
    return out
