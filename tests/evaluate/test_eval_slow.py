"""Eval on the real packaged SmolLM2-135M (slow): its chat template, stop tokens and the adapter switch."""

import json

import pytest

from privtune.config import EvalConfig
from privtune.evaluate.report import evaluate

pytestmark = pytest.mark.slow


def test_identity_adapter_on_the_real_model_changes_nothing(tmp_path, packaged_base, make_run, write_records):
    # PEFT's default LoRA init (B = 0) leaves the model unchanged: tuned and base must agree token for token
    run_dir = make_run(tmp_path / "run", packaged_base.path, config_base=None, identity=True)
    data = write_records(tmp_path / "test.jsonl", n=9)  # 3 labels x 3: a label task (<= n/3 distinct)
    report = evaluate(run_dir, data, EvalConfig(max_new_tokens=6, batch_size=5), baseline=True)
    rows = [json.loads(x) for x in (run_dir / "eval" / "default" / "predictions.jsonl").read_text().splitlines()]
    assert [r["tuned"] for r in rows] == [r["base"] for r in rows]
    assert all(d == 0.0 for d in report["delta"].values())
    assert all(r["tuned"] and "<|im_end|>" not in r["tuned"] and "<|im_start|>" not in r["tuned"] for r in rows)
    assert report["run"]["base_name"] == "SmolLM2-135M-Instruct"
    assert report["label_task"] is True and 0.0 <= report["tuned"]["accuracy"] <= 1.0
