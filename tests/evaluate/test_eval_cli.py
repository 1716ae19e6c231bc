"""`privtune eval` end to end on the tiny model with a LoRA adapter made here, through the CLI."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from privtune.cli import app
from privtune.config import EvalConfig
from privtune.evaluate.report import evaluate

runner = CliRunner()
METRICS = {"exact_match", "token_f1", "rouge_l", "bleu", "accuracy", "macro_f1"}


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_eval_with_baseline_writes_private_report_predictions_and_registry_row(tmp_path, run_dir, varied_model_dir,
                                                                              write_records):
    data = write_records(tmp_path / "data" / "test.jsonl", n=12)
    res = runner.invoke(app, ["eval", "--run", str(run_dir), "--data", str(data), "--baseline", "--name", "t1",
                              "--max-new-tokens", "6", "--batch-size", "5"])
    assert res.exit_code == 0, res.output
    out = run_dir / "eval" / "t1"
    report = json.loads((out / "report.json").read_text())

    assert report["n"] == 12 and report["name"] == "t1"
    assert report["label_task"] is True
    assert report["labels"] == ["account_access", "card_lost", "fraud_report"]
    assert set(report["tuned"]) == set(report["base"]) == set(report["delta"]) == METRICS
    for system in ("tuned", "base"):
        for k, v in report[system].items():
            assert 0.0 <= v <= (100.0 if k == "bleu" else 1.0), (system, k, v)
    for k, d in report["delta"].items():
        assert d == pytest.approx(report["tuned"][k] - report["base"][k])
    from privtune import fsio

    assert report["data"] == {"path": str(data.resolve()), "sha256": fsio.sha256_file(data), "records_in_file": 12}
    assert report["run"]["adapter_sha256"] == fsio.sha256_dir(run_dir / "adapter")
    assert report["run"]["base_sha256"] == json.loads((run_dir / "run.json").read_text())["base"]["weights_sha256"]
    assert set(report["by_category"]) == {"cards", "other"}
    assert report["by_category"]["cards"]["n"] == 4 and report["by_category"]["other"]["n"] == 8
    assert set(report["by_category"]["cards"]["base"]) == METRICS
    conf = report["confusion"]
    assert conf["labels"] == [*report["labels"], "<other>"]
    for system in ("tuned", "base"):
        assert len(conf[system]) == 4 and all(len(row) == 4 for row in conf[system])
        assert sum(map(sum, conf[system])) == 12
        assert sum(conf[system][i][i] for i in range(3)) == round(report[system]["accuracy"] * 12)
    for system in ("tuned", "base"):
        per = report["per_label"][system]
        assert set(per) == set(report["labels"]) and sum(v["support"] for v in per.values()) == 12
        assert all(0.0 <= v[k] <= 1.0 for v in per.values() for k in ("precision", "recall", "f1"))
    assert report["generation"]["max_new_tokens"] == 6
    assert report["generation"]["prompt_tokens_shared"]["tuned"] > 0  # the system prompt was computed once a batch
    assert set(report["timings"]) >= {"load_s", "generate_tuned_s", "generate_base_s", "score_s", "total_s"}

    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"r{i:03d}" for i in range(12)]
    assert all({"id", "category", "reference", "tuned", "base"} <= set(p) for p in preds)
    assert [p["tuned"] for p in preds] != [p["base"] for p in preds]  # the adapter is live, the baseline is not

    # the baseline is the base model itself (adapter disabled), not some other model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from privtune.evaluate.generate import generate
    from privtune.evaluate.records import load_records

    base_model = AutoModelForCausalLM.from_pretrained(varied_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(varied_model_dir)
    prompts = [r.prompt for r in load_records(data)]
    assert generate(base_model, tok, prompts, 6, 5, show_progress=False) == [p["base"] for p in preds]

    assert _mode(out) == 0o700
    for name in ("report.json", "report.md", "predictions.jsonl"):
        assert _mode(out / name) == 0o600
    md = (out / "report.md").read_text()
    assert "| metric | base | tuned | Δ |" in md and "| accuracy |" in md and "## By category" in md
    assert "metric" in res.stdout and "accuracy" in res.stdout  # the rich table

    from privtune.registry.store import list_runs

    runs = list_runs()
    assert len(runs) == 1 and runs[0]["eval"] == report["tuned"] and runs[0]["eval_base"] == report["base"]

    from privtune.registry import auditlog

    entry = [e for e in auditlog.entries() if e["action"] == "eval"][-1]
    assert entry["outputs"]["report"] == fsio.sha256_file(out / "report.json")
    assert entry["inputs"] == {"adapter": report["run"]["adapter_sha256"], "data": report["data"]["sha256"]}


def test_eval_dataset_dir_without_baseline_caps_records(tmp_path, run_dir, write_records):
    write_records(tmp_path / "ds" / "test.jsonl", n=9, with_category=False)
    report = evaluate(run_dir, tmp_path / "ds", EvalConfig(max_new_tokens=4, max_records=5, label_task=False))
    assert report["n"] == 5 and report["data"]["records_in_file"] == 9
    assert "base" not in report and "delta" not in report and "confusion" not in report
    assert report["label_task"] is False and set(report["tuned"]) == METRICS - {"accuracy", "macro_f1"}
    assert report["by_category"] == {}
    preds = (run_dir / "eval" / "default" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 5 and all(json.loads(p)["base"] is None for p in preds)
    md = (run_dir / "eval" / "default" / "report.md").read_text()
    assert "| metric | tuned |" in md


def _fails(args, *expected):
    res = runner.invoke(app, ["eval", *args])
    assert res.exit_code == 2, res.output
    for e in expected:
        assert e in res.output
    return res


def test_missing_run_json_is_exit_2_naming_the_file(tmp_path, run_dir, write_records):
    data = write_records(tmp_path / "test.jsonl")
    (run_dir / "run.json").unlink()
    _fails(["--run", str(run_dir), "--data", str(data)], str(run_dir / "run.json"))
    assert not (run_dir / "eval").exists()


def test_bad_data_line_is_exit_2_with_file_line_and_no_report(tmp_path, run_dir, write_records):
    data = write_records(tmp_path / "test.jsonl", n=6)
    lines = data.read_text().splitlines()
    lines[2] = '{"id": "r2", "messages": [{"role": "user", "content": "hi"}'  # truncated JSON
    data.write_text("\n".join(lines) + "\n")
    _fails(["--run", str(run_dir), "--data", str(data)], f"{data}:3", "invalid JSON")
    lines[2] = json.dumps({"id": "r2", "messages": [{"role": "user", "content": "no answer"}]})
    data.write_text("\n".join(lines) + "\n")
    _fails(["--run", str(run_dir), "--data", str(data)], f"{data}:3", "field 'messages'")
    lines[2] = json.dumps({"id": "r2", "messages": [{"role": "bot", "content": "x"}]})
    data.write_text("\n".join(lines) + "\n")
    _fails(["--run", str(run_dir), "--data", str(data)], f"{data}:3", "messages[0].role")
    assert not (run_dir / "eval").exists()


def test_other_bad_inputs_are_exit_2(tmp_path, run_dir, write_records):
    data = write_records(tmp_path / "test.jsonl")
    _fails(["--run", str(run_dir), "--data", str(tmp_path / "nope")], str(tmp_path / "nope"))
    (tmp_path / "ds").mkdir()
    _fails(["--run", str(run_dir), "--data", str(tmp_path / "ds")], str(tmp_path / "ds" / "test.jsonl"))
    _fails(["--run", str(run_dir), "--data", str(data), "--name", "../escape"], "--name")
    (run_dir / "run.json").write_text('{"config": {},\n "base": ')
    _fails(["--run", str(run_dir), "--data", str(data)], f"{run_dir / 'run.json'}:2", "invalid JSON")
    assert not (run_dir / "eval").exists()


def test_modified_adapter_is_refused(tmp_path, run_dir, write_records):
    data = write_records(tmp_path / "test.jsonl")
    weights = run_dir / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    _fails(["--run", str(run_dir), "--data", str(data)], "adapter_sha256", str(run_dir / "adapter"))
    assert not (run_dir / "eval").exists()


def test_encrypted_dataset_and_adapter_are_read_and_predictions_written_encrypted(tmp_path, run_dir, write_records,
                                                                                monkeypatch):
    from privtune import fsio
    from privtune.registry import crypto

    key = crypto.keygen(tmp_path / "data.key")
    monkeypatch.setenv(crypto.KEY_ENV, key.path)
    monkeypatch.setenv("PRIVTUNE_PLAINTEXT_DIR", str(tmp_path / "scratch"))
    data = write_records(tmp_path / "ds" / "test.jsonl", n=6)
    plain_data_sha, plain_adapter_sha = fsio.sha256_file(data), fsio.sha256_dir(run_dir / "adapter")
    crypto.encrypt_tree(tmp_path / "ds", key)
    crypto.encrypt_tree(run_dir / "adapter", key)
    assert crypto.is_encrypted(data)

    report = evaluate(run_dir, tmp_path / "ds", EvalConfig(max_new_tokens=4, batch_size=3))
    assert report["n"] == 6 and report["predictions_encrypted"] is True
    assert report["data"]["sha256"] == plain_data_sha and report["run"]["adapter_sha256"] == plain_adapter_sha
    preds = run_dir / "eval" / "default" / "predictions.jsonl"
    assert crypto.is_encrypted(preds) and b"card_lost" not in preds.read_bytes()
    rows = crypto.read_text_maybe_encrypted(preds).splitlines()
    assert [json.loads(r)["reference"] for r in rows][:3] == ["card_lost", "fraud_report", "account_access"]
    assert not list((tmp_path / "scratch").iterdir())  # the decrypted adapter copy is gone
