"""`privtune train` on the command line: bad inputs exit 2 with file:line and write nothing; a good run exits 0."""

from __future__ import annotations

import json

import pytest
from train_helpers import record, write_dataset
from typer.testing import CliRunner

from privtune.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def run_cli(data, out, base, *extra):
    return CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(out), "--base", str(base),
                                    "--epochs", "1", "--threads", "1", *extra])


@pytest.fixture()
def data(tmp_path):
    return write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(12)],
                         [record(i, i % 4) for i in range(12, 16)])


def assert_nothing_written(out):
    assert not out.exists()


def test_train_cli_writes_a_run(data, tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    r = run_cli(data, out, tiny_model_dir, "--batch-size", "4", "--grad-accum", "2", "--max-seq-len", "64")
    assert r.exit_code == 0, r.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["steps"] == 2
    assert run["config"]["grad_accum"] == 2 and run["config"]["max_seq_len"] == 64
    assert "best val loss" in r.output and str(out / "adapter") in r.output


def test_missing_train_file(data, tmp_path, tiny_model_dir):
    (data / "train.jsonl").unlink()
    out = tmp_path / "run"
    r = run_cli(data, out, tiny_model_dir)
    assert r.exit_code == 2
    assert f"{data / 'train.jsonl'}: file not found" in r.output
    assert_nothing_written(out)


def test_missing_dataset_dir_and_manifest(tmp_path, tiny_model_dir, data):
    r = run_cli(tmp_path / "nope", tmp_path / "run", tiny_model_dir)
    assert r.exit_code == 2 and "dataset directory not found" in r.output
    (data / "manifest.json").unlink()
    r = run_cli(data, tmp_path / "run", tiny_model_dir)
    assert r.exit_code == 2 and "manifest.json" in r.output
    assert_nothing_written(tmp_path / "run")


@pytest.mark.parametrize("bad_line, expected", [
    ("{not json", "invalid JSON"),
    (json.dumps({"id": "x", "messages": [{"role": "user", "content": "Secret Text 42"}]}),
     "field 'messages': has no assistant message"),
    (json.dumps({"id": "x", "messages": [{"role": "bot", "content": "Secret Text 42"}]}), "field 'messages[0].role'"),
    (json.dumps({"id": "x", "messages": [{"role": "assistant", "content": 3}]}), "field 'messages[0].content'"),
    (json.dumps({"messages": [{"role": "assistant", "content": "a"}]}), "field 'id'"),
    (json.dumps(["a"]), "a record must be a JSON object"),
])
def test_malformed_line_names_file_line_and_field(data, tmp_path, tiny_model_dir, bad_line, expected):
    lines = (data / "train.jsonl").read_text().splitlines()
    lines.insert(2, bad_line)
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    r = run_cli(data, out, tiny_model_dir)
    assert r.exit_code == 2, r.output
    assert f"{data / 'train.jsonl'}:3" in r.output and expected in r.output
    assert "Secret Text" not in r.output  # errors name where, never the record's text
    assert_nothing_written(out)


def test_bad_val_line_and_unknown_base(data, tmp_path, tiny_model_dir):
    with open(data / "val.jsonl", "a") as fh:
        fh.write("{}\n")
    r = run_cli(data, tmp_path / "run", tiny_model_dir)
    assert r.exit_code == 2 and f"{data / 'val.jsonl'}:5" in r.output
    r = run_cli(data, tmp_path / "run", tmp_path / "no-model")
    assert r.exit_code == 2 and "base model not found" in r.output
    assert_nothing_written(tmp_path / "run")


def test_existing_run_dir_is_refused(data, tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    assert run_cli(data, out, tiny_model_dir).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = run_cli(data, out, tiny_model_dir)
    assert r.exit_code == 2 and "already holds a finished run" in r.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    r = run_cli(data, tmp_path / "other", tiny_model_dir)
    assert r.exit_code == 2 and "is not empty" in r.output
