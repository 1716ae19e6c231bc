"""`privtune prepare --canaries N`: canaries reach train.jsonl after redaction; secrets only in the sealed file."""

from __future__ import annotations

import json

import yaml
from tests.audit.conftest import LABELS, TICKETS
from typer.testing import CliRunner

from privtune.cli import app

runner = CliRunner()


def test_prepare_inserts_sealed_canaries_into_train_only(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"instruction": "Classify the ticket.", "input": f"{TICKETS[i % 6]} No {i}.",
                                       "output": LABELS[i % 6], "metadata": {"category": LABELS[i % 6]}}) + "\n"
                           for i in range(30)))
    cfg = tmp_path / "prep.yaml"  # no redaction model, no tokenizer: this test is about the canary hook
    cfg.write_text(yaml.safe_dump({"redact": {"enabled": False}, "quality": {"enabled": False},
                                   "dedup": {"near": False}}))
    out = tmp_path / "ds"
    res = runner.invoke(app, ["prepare", str(src), "--out", str(out), "--config", str(cfg), "--canaries", "3"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    sealed = json.loads((out / "canaries.sealed.json").read_text())
    secrets = [c["secret"] for c in sealed["canaries"]]
    assert [c["repeats"] for c in sealed["canaries"]] == [10, 1, 10]
    assert manifest["canaries"]["records"] == 21 and manifest["canaries"]["sealed_file"] == "canaries.sealed.json"
    train = (out / "train.jsonl").read_text()
    for s, c in zip(secrets, sealed["canaries"], strict=True):
        assert train.count(s) == c["repeats"]
        for name in ("val.jsonl", "test.jsonl", "manifest.json", "data_card.md", "review.csv"):
            if (out / name).exists():
                assert s not in (out / name).read_text(), name
    assert manifest["files"]["train.jsonl"]  # hashed after the canaries went in
    assert oct((out / "canaries.sealed.json").stat().st_mode & 0o777) == "0o600"
