"""`privtune train --method ...` through the CLI: dispatch, exit codes, prepare → dpo end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from privtune.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cpt_on_text_files_via_cli(learnable_model_dir, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"d{i}.txt").write_text("Transfers above the daily limit need a second approval. " * 4)
    res = invoke("train", "--data", docs, "--out", tmp_path / "run", "--base", learnable_model_dir,
                 "--method", "cpt", "--epochs", "1", "--threads", "1", "--batch-size", "4")
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["method"] == "cpt" and run["status"] == "finished" and "adapter " in res.output


def test_method_input_errors_exit_2(learnable_model_dir, label_data, tmp_path):
    res = invoke("train", "--data", label_data, "--out", tmp_path / "r1", "--base", learnable_model_dir,
                 "--method", "distill")
    assert res.exit_code == 2 and "--teacher" in res.output
    res = invoke("train", "--data", label_data, "--out", tmp_path / "r2", "--base", learnable_model_dir,
                 "--method", "dpo")
    assert res.exit_code == 2 and "train.jsonl:1" in res.output and "chosen" in res.output
    res = invoke("train", "--data", label_data, "--out", tmp_path / "r3", "--method", "sft")
    assert res.exit_code == 2 and "method" in res.output
    assert not any((tmp_path / r).exists() for r in ("r1", "r2", "r3"))


def test_prepare_then_dpo(learnable_model_dir, tmp_path):
    prompts = ["I lost my card", "Transfer failed twice", "Please reset my password", "Someone used my account"]
    raw = tmp_path / "prefs.jsonl"
    raw.write_text("".join(json.dumps({"prompt": f"{prompts[i % 4]} (ticket {i})", "chosen": str(i % 4),
                                       "rejected": str((i + 1) % 4)}) + "\n" for i in range(60)))
    res = invoke("prepare", raw, "--out", tmp_path / "data", "--no-redact", "--min-tokens", "0",
                 "--base", learnable_model_dir, "--stratify-by", "")
    assert res.exit_code == 0, res.output
    first = json.loads((tmp_path / "data" / "train.jsonl").read_text().splitlines()[0])
    assert set(first) >= {"id", "messages", "chosen", "rejected"} and first["messages"][-1]["role"] == "user"
    res = invoke("train", "--data", tmp_path / "data", "--out", tmp_path / "run", "--base", learnable_model_dir,
                 "--method", "dpo", "--epochs", "1", "--threads", "1", "--lr", "1e-2")
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["method"] == "dpo" and run["best_val_loss"] < run["initial_val_loss"]
