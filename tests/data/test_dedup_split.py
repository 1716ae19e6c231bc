"""Exact dedup on normalised content, and the seeded, stratified split."""

from __future__ import annotations

from collections import Counter

import pytest

from privtune.config import SplitConfig
from privtune.data.dedup import content_key, exact_dedup, normalise_text
from privtune.data.split import allocate, assign_splits, split_records, split_sizes


def _chat(user: str, answer: str = "ok") -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def test_normalise_text_folds_case_width_ligatures_and_whitespace():
    assert normalise_text("  Ｆile\tthe ﬁrst   CLAIM\n") == "file the first claim"


def test_content_key_sees_all_fields_and_roles_but_not_ids_or_metadata():
    a = _chat("Reset my PASSWORD  please") | {"id": "1", "metadata": {"category": "x"}}
    b = _chat("reset my password please") | {"id": "2", "metadata": {"category": "y"}}
    assert content_key(a) == content_key(b)
    assert content_key(a) != content_key(_chat("reset my password please", "no"))
    swapped = {"messages": [{"role": "assistant", "content": "reset my password please"},
                            {"role": "user", "content": "ok"}]}
    assert content_key(swapped) != content_key(b)
    pref = {"messages": [{"role": "user", "content": "p"}], "chosen": "a", "rejected": "b"}
    assert content_key(pref) != content_key(pref | {"rejected": "c"})
    assert content_key({"text": "Doc"}) == content_key({"text": "doc "}) != content_key({"text": "doc 2"})


def test_exact_dedup_keeps_the_first_copy_in_order():
    items = [("a", "x"), ("b", "y"), ("c", "X "), ("d", "z"), ("e", "y")]
    result = exact_dedup(items, key=lambda it: normalise_text(it[1]))
    assert [i[0] for i in result.kept] == ["a", "b", "d"]
    assert [(d[0], k[0]) for d, k in result.duplicates] == [("c", "a"), ("e", "b")]


@pytest.mark.parametrize("n", range(1, 41))
def test_split_sizes_sum_up_and_train_is_never_empty(n):
    sizes = split_sizes(n, SplitConfig())
    assert sum(sizes.values()) == n and sizes["train"] >= 1
    assert sizes == {"train": n - 2 * ((n + 5) // 10), "val": (n + 5) // 10, "test": (n + 5) // 10} or n < 3


def test_split_sizes_with_all_weight_on_held_out_still_trains():
    assert split_sizes(4, SplitConfig(train=0.0, val=0.5, test=0.5)) == {"train": 1, "val": 2, "test": 1}


def test_allocate_is_proportional_and_respects_caps():
    assert allocate(10, {"a": 50, "b": 30, "c": 20}, {"a": 49, "b": 29, "c": 19}) == {"a": 5, "b": 3, "c": 2}
    assert allocate(3, {"a": 1, "b": 1, "c": 5}, {"a": 0, "b": 0, "c": 4}) == {"a": 0, "b": 0, "c": 3}


def test_stratified_split_keeps_proportions_per_class():
    labels = ["a"] * 500 + ["b"] * 300 + ["c"] * 150 + ["d"] * 50
    out = assign_splits(labels, len(labels), SplitConfig(seed=7))
    assert Counter(out) == {"train": 800, "val": 100, "test": 100}
    per = Counter(zip(labels, out, strict=True))
    for cls, size in Counter(labels).items():
        assert per[(cls, "val")] == size // 10 and per[(cls, "test")] == size // 10


def test_rare_classes_stay_in_train_and_proportions_hold_with_many_small_classes():
    labels = ["big"] * 40 + [f"pair{i}" for i in range(10) for _ in range(2)] + ["single1", "single2"]
    out = assign_splits(labels, len(labels), SplitConfig(seed=1))
    assert Counter(out) == {"train": 50, "val": 6, "test": 6}
    for single in ("single1", "single2"):
        assert out[labels.index(single)] == "train"
    for i in range(10):  # a class of two keeps at least one in train
        assert "train" in {s for lab, s in zip(labels, out, strict=True) if lab == f"pair{i}"}


def test_split_is_deterministic_per_seed_and_changes_with_the_seed():
    labels = [i % 3 for i in range(90)]
    a = assign_splits(labels, 90, SplitConfig(seed=3))
    assert a == assign_splits(labels, 90, SplitConfig(seed=3))
    assert a != assign_splits(labels, 90, SplitConfig(seed=4))


def test_missing_label_falls_back_to_an_unstratified_split():
    meta = [{"category": "a"}] * 9 + [{}]
    result = split_records(meta, SplitConfig())
    assert result.stratified_by is None and "missing on 1 of 10" in result.note
    assert Counter(result.assignment) == {"train": 8, "val": 1, "test": 1}
    assert split_records([{"category": "a"}] * 10, SplitConfig()).stratified_by == "category"
    assert split_records([{}] * 10, SplitConfig(stratify_by=None)).note is None


def test_tiny_datasets_put_everything_in_train():
    for n in (1, 2):
        assert set(assign_splits(["a"] * n, n, SplitConfig())) == {"train"}
