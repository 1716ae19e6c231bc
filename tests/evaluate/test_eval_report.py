"""Report additions: paired bootstrap CIs, worst examples, overfitting detection, report.html."""

from __future__ import annotations

import json
import re

import pytest

from privtune import fsio
from privtune.config import EvalConfig
from privtune.evaluate import metrics
from privtune.evaluate.compare import bootstrap, per_record, resampled_scores, worst_records
from privtune.evaluate.overfit import detect, epoch_losses
from privtune.evaluate.report import evaluate

LABELS = ["card_lost", "fraud_report"]


def test_resample_of_every_record_reproduces_the_reported_scores():
    import numpy as np

    refs = ["card_lost", "fraud_report", "card_lost", "fraud_report", "card_lost", "card_lost"]
    preds = ["card lost", "The answer is fraud_report", "fraud_report", "no idea", "card_lost", "card_lost"]
    rec = per_record(preds, refs, LABELS)
    full = resampled_scores(rec, np.arange(len(refs)), np.unique(rec["ref_idx"]))
    expected = metrics.score(preds, refs, LABELS)
    assert full == pytest.approx(expected)
    free = ["the quick brown fox", "jumps over", "a lazy dog today", "x"]
    free_refs = ["the quick brown fox jumps", "jumps over it", "the lazy dog", "y z"]
    rec = per_record(free, free_refs, None)
    assert resampled_scores(rec, np.arange(4), None) == pytest.approx(metrics.score(free, free_refs))


def test_paired_bootstrap_hand_case():
    # 20 records: tuned right on all, base right on the first 10 → Δ accuracy = 0.5 exactly
    refs = ["card_lost", "fraud_report"] * 10
    tuned = list(refs)
    base = refs[:10] + ["fraud_report" if r == "card_lost" else "card_lost" for r in refs[10:]]
    out = bootstrap(refs, {"tuned": tuned, "base": base}, LABELS, n_resamples=500, seed=1)
    lo, hi = out["delta_ci"]["accuracy"]
    # per resample Δ = share of the drawn records from the second half: mean 0.5, sd sqrt(.25/20) = 0.112
    assert 0.2 < lo < 0.35 and 0.65 < hi < 0.8
    assert out["p_delta_le_0"]["accuracy"] == 0.0
    assert out["ci"]["tuned"]["accuracy"] == [1.0, 1.0] and out["ci"]["tuned"]["macro_f1"] == [1.0, 1.0]
    # identical systems: every resampled difference is exactly 0
    same = bootstrap(refs, {"tuned": base, "base": base}, LABELS, n_resamples=200, seed=1)
    assert all(ci == [0.0, 0.0] for ci in same["delta_ci"].values())
    assert same["p_delta_le_0"]["accuracy"] == 1.0
    # seeded: the same seed gives the same intervals
    assert bootstrap(refs, {"tuned": tuned, "base": base}, LABELS, n_resamples=500, seed=1) == out


def test_worst_records_puts_wrong_labels_first_then_low_f1():
    refs = ["card_lost", "fraud_report", "card_lost", "fraud_report"]
    preds = ["card_lost", "fraud report maybe", "fraud_report", "fraud_report"]
    order = [i for i, _ in worst_records(refs, preds, LABELS, k=3)]
    assert order == [2, 1, 0]  # wrong (token F1 0) < right but wordy (F1 0.8) < right
    rows = worst_records(["a b c", "a b c"], ["a b c", "x"], None, k=1)
    assert rows[0][0] == 1 and rows[0][1]["token_f1"] == 0.0


def _rows(train: list[float], val: list[float], per_epoch: int = 2) -> list[dict]:
    rows = [{"step": 0, "epoch": 0.0, "train_loss": None, "val_loss": 3.0}]
    step = 0
    for e, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        for j in range(per_epoch):
            step += 1
            last = j == per_epoch - 1
            rows.append({"step": step, "epoch": round(e - 1 + (j + 1) / per_epoch, 4), "train_loss": t + (0.1 if
                         j == 0 else -0.1), "val_loss": v if last else None})
    return rows


def test_overfitting_named_with_best_epoch_and_gap():
    rows = _rows(train=[2.0, 1.5, 1.0, 0.5], val=[2.2, 1.8, 1.9, 2.3])
    assert [e.epoch for e in epoch_losses(rows)] == [1, 2, 3, 4]
    assert epoch_losses(rows)[1].train_loss == pytest.approx(1.5)
    out = detect(rows)
    assert out["detected"] is True and out["best_epoch"] == 2 and out["last_epoch"] == 4
    assert out["gap_at_best"] == pytest.approx(0.3) and out["gap_at_last"] == pytest.approx(1.8)
    assert "epoch 2" in out["message"] and "+0.3000" in out["message"] and "+1.8000" in out["message"]


@pytest.mark.parametrize(("train", "val"), [
    ([2.0, 1.5, 1.0], [2.2, 1.8, 1.6]),   # val still falling
    ([2.0, 1.5, 1.6], [2.2, 1.8, 2.0]),   # val rose but train rose too: not the overfitting pattern
    ([2.0, 1.5, 1.4], [2.2, 1.8, 1.81]),  # within the 1% tolerance
    ([2.0], [2.2]),                       # one epoch: nothing to compare
])
def test_no_overfitting_signal(train, val):
    assert detect(_rows(train, val))["detected"] is False


def test_report_html_md_with_cis_overfitting_and_redacted_worst_examples(tmp_path, run_dir, write_records):
    data = write_records(tmp_path / "test.jsonl", n=12)
    lines = data.read_text().splitlines()
    row = json.loads(lines[0])
    row["messages"][1]["content"] = "My card is gone. Reach me at jane.doe@example.com please."
    lines[0] = json.dumps(row)
    data.write_text("\n".join(lines) + "\n")
    fsio.write_jsonl(run_dir / "metrics.jsonl", _rows(train=[2.0, 1.5, 1.0], val=[2.2, 1.8, 2.4]))

    report = evaluate(run_dir, data, EvalConfig(max_new_tokens=4, batch_size=6, bootstrap_resamples=200,
                                                worst_examples=12), baseline=True, print_table=False)
    out = run_dir / "eval" / "default"
    assert set(report["delta_ci"]) == set(report["delta"])
    assert all(lo <= hi for lo, hi in report["delta_ci"].values())
    assert report["bootstrap"]["n_resamples"] == 200
    assert report["overfitting"]["detected"] and report["overfitting"]["best_epoch"] == 2
    assert any("overfitting" in w for w in report["warnings"])
    worst = report["worst_examples"]
    assert len(worst) == 12 and all(ex["redacted"] for ex in worst)
    scores = [(ex["scores"]["correct"], ex["scores"]["token_f1"]) for ex in worst]
    assert scores == sorted(scores)

    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (html, md, (out / "report.json").read_text()):
        assert "jane.doe@example.com" not in text  # the raw email never reaches a plaintext report
    assert "[EMAIL_ADDRESS]" in md
    assert html.count("data:image/png;base64,") == 4  # metric bars, loss curves, 2 confusion matrices
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html)  # self-contained
    assert "95% CI of Δ" in md and "## Training curve" in md and "worst examples" in md
    assert "| 2 (best) |" in md
    assert oct((out / "report.html").stat().st_mode & 0o777) == "0o600"


def test_worst_example_text_is_left_out_when_data_is_encrypted_at_rest(tmp_path, run_dir, write_records,
                                                                        monkeypatch):
    from privtune.registry import crypto

    key = tmp_path / "data.key"
    crypto.keygen(key)
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key))
    data = write_records(tmp_path / "test.jsonl", n=6)
    report = evaluate(run_dir, data, EvalConfig(max_new_tokens=3, bootstrap_resamples=0, html=False),
                      print_table=False)
    assert "ci" not in report and not (run_dir / "eval" / "default" / "report.html").exists()
    assert all("prompt" not in ex and "tuned" not in ex and "text" in ex for ex in report["worst_examples"])
