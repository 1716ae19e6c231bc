"""A `--method full` run (model/ instead of adapter/) works in eval, audit and export, and serve/vLLM say what to do."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from train_helpers import fast_config
from typer.testing import CliRunner

from privtune.cli import app
from privtune.config import ExportConfig
from privtune.errors import InputError
from privtune.train.sft import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_full_run_downstream(learnable_model_dir, label_data, tmp_path):
    from transformers import AutoModelForCausalLM

    from privtune.evaluate.generate import load_run_model
    from privtune.export import export_run
    from privtune.serve.loader import load_served

    run_dir = tmp_path / "run"
    run = train(label_data, run_dir, fast_config(learnable_model_dir, method="full", epochs=1, learning_rate=3e-3))
    assert run["artefact"] == "model" and run["model_sha256"]

    # the model eval/audit/export load is exactly the saved full model, not the base with something on top
    model, _, loaded = load_run_model(run_dir)
    plain = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert type(model) is type(plain) and loaded["_artefact"] == "model"
    assert all(torch.equal(p, plain.state_dict()[n]) for n, p in model.state_dict().items())
    assert loaded["_adapter_sha256"] == run["model_sha256"]

    cli = CliRunner().invoke
    r = cli(app, ["eval", "--run", str(run_dir), "--data", str(label_data / "val.jsonl"), "--baseline",
                  "--max-records", "6", "--max-new-tokens", "3"])
    assert r.exit_code == 0, r.output
    report = json.loads((run_dir / "eval" / "default" / "report.json").read_text())
    assert report["run"]["artefact"] == "model" and report["run"]["adapter_sha256"] == run["model_sha256"]
    assert set(report["tuned"]) == set(report["base"]) and report["n"] == 6

    (tmp_path / "audit.yaml").write_text("canary_candidates: 20\ncontrol_canaries: 1\nmia_max_records: 4\n"
                                         "max_new_tokens: 2\n")
    r = cli(app, ["audit", "--run", str(run_dir), "--config", str(tmp_path / "audit.yaml"), "--threads", "1"])
    assert r.exit_code in (0, 3), r.output
    audit = json.loads((run_dir / "audit" / "audit.json").read_text())
    assert audit["run"]["adapter_sha256"] == run["model_sha256"] and audit["regurgitation"]["probes"] > 0

    rec = export_run([str(run_dir)], "merged", tmp_path / "merged", ExportConfig(verify_max_new_tokens=4))
    assert rec["verify"]["match_rate"] == 1.0 and rec["verify"]["against"] == "the run's full model"
    with pytest.raises(InputError, match="--format merged"):
        export_run([str(run_dir)], "vllm", tmp_path / "vllm", ExportConfig())
    with pytest.raises(InputError, match="--base"):
        load_served({"hr": run_dir})
    assert not (tmp_path / "vllm").exists()

    tampered = tmp_path / "tampered"
    shutil.copytree(run_dir, tampered)
    with open(tampered / "model" / "config.json", "a") as f:
        f.write("\n")  # one byte: still valid JSON, no longer the model that was trained
    r = cli(app, ["eval", "--run", str(tampered), "--data", str(label_data / "val.jsonl"), "--max-records", "2"])
    assert r.exit_code == 2 and "model sha256" in r.output and "modified after training" in r.output
