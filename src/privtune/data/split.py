"""Seeded train/val/test split, stratified by a metadata field when every record has it.

Pure functions over the records' labels, so the allocation is easy to check without any data: the
held-out sizes are fixed for the whole dataset first (so proportions hold even with many small classes),
then shared between classes by largest remainder, and every class keeps at least one record in train
(a class with one record goes to train). Train is never empty.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from privtune.config import SplitConfig

SPLITS = ("train", "val", "test")
_ALL = "__all__"


@dataclass(frozen=True)
class SplitResult:
    assignment: list[str]  # split name per input item, in input order
    stratified_by: str | None
    note: str | None = None


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # half up: round() would send 0.5 down to 0


def split_sizes(n: int, cfg: SplitConfig) -> dict[str, int]:
    """Dataset-wide split sizes; held-out splits shrink (test first) until train has at least one record."""
    val, test = _round(n * cfg.val), _round(n * cfg.test)
    while n and n - val - test < 1:
        if test >= val and test:
            test -= 1
        else:
            val -= 1
    return {"train": n - val - test, "val": val, "test": test}


def allocate(total: int, sizes: dict[Hashable, int], caps: dict[Hashable, int]) -> dict[Hashable, int]:
    """Share `total` between groups in proportion to `sizes` (largest remainder), at most caps[g] each."""
    n = sum(sizes.values())
    if not n or not total:
        return dict.fromkeys(sizes, 0)
    quota = {g: total * s / n for g, s in sizes.items()}
    alloc = {g: min(caps[g], math.floor(q)) for g, q in quota.items()}
    order = sorted(sizes, key=lambda g: (-(quota[g] - math.floor(quota[g])), -sizes[g], str(g)))
    left = total - sum(alloc.values())
    while left > 0:
        grew = False
        for g in order:
            if left and alloc[g] < caps[g]:
                alloc[g] += 1
                left -= 1
                grew = True
        if not grew:
            break
    return alloc


def _usable(labels: list, field: str) -> tuple[list[Hashable] | None, str | None]:
    """The labels to stratify by, or (None, why not)."""
    missing = sum(1 for v in labels if v is None)
    if missing:
        return None, f"metadata.{field} is missing on {missing} of {len(labels)} records; split not stratified"
    if any(not isinstance(v, str | int | float | bool) for v in labels):
        return None, f"metadata.{field} holds non-scalar values; split not stratified"
    return labels, None


def assign_splits(labels: Sequence[Hashable] | None, n: int, cfg: SplitConfig) -> list[str]:
    """Split name for each of n items; deterministic for a given seed."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i in range(n):
        groups[labels[i] if labels is not None else _ALL].append(i)
    sizes = {g: len(ix) for g, ix in groups.items()}
    want = split_sizes(n, cfg)
    caps = {g: max(s - 1, 0) for g, s in sizes.items()}  # every group keeps one record in train
    test = allocate(want["test"], sizes, caps)
    val = allocate(want["val"], sizes, {g: caps[g] - test[g] for g in sizes})
    rng = random.Random(cfg.seed)
    out = ["train"] * n
    for g in sorted(groups, key=lambda g: (type(g).__name__, str(g))):
        members = list(groups[g])
        rng.shuffle(members)
        for i in members[:test[g]]:
            out[i] = "test"
        for i in members[test[g]:test[g] + val[g]]:
            out[i] = "val"
    return out


def split_records(metadata: Sequence[dict], cfg: SplitConfig) -> SplitResult:
    field = cfg.stratify_by
    return split_labels([m.get(field) for m in metadata] if field else [None] * len(metadata), cfg)


def split_labels(labels: list, cfg: SplitConfig) -> SplitResult:
    """`split_records` for a caller that already holds each record's `cfg.stratify_by` value (None = missing):
    prepare keeps only those, and a million one-key dicts would cost ~200 MB."""
    usable, note = _usable(labels, cfg.stratify_by) if cfg.stratify_by else (None, None)
    return SplitResult(assign_splits(usable, len(labels), cfg), cfg.stratify_by if usable is not None else None,
                       note)
