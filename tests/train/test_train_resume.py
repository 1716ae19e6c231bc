"""Crash-safe resume: a run killed with SIGKILL mid-epoch continues from its checkpoint and ends exactly where an
uninterrupted run ends (same val loss, same best adapter, no duplicated metrics rows)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import fast_config, record, write_dataset
from typer.testing import CliRunner

from privtune import fsio
from privtune.cli import app
from privtune.errors import InputError
from privtune.registry import crypto
from privtune.train import checkpoint
from privtune.train.sft import resume, train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

STEPS_PER_EPOCH = 24  # 96 records, batch 4


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture()
def data(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(96)],
                         [record(i, i % 4) for i in range(96, 112)])


def settings(model_dir: Path) -> dict:
    return dict(base=str(model_dir), epochs=2, batch_size=4, learning_rate=5e-3, num_threads=1, log_every=3,
                checkpoint_every=5, patience=5)


def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run(learnable_model_dir, data, tmp_path):
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text(yaml.safe_dump(settings(learnable_model_dir)))
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PRIVTUNE_LOG": "WARNING", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "privtune.cli", "train", "--data", str(data), "--out",
                             str(run_dir), "--config", str(cfg_file)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while checkpoint.latest(run_dir) is None:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = json.loads((run_dir / "run.json").read_text())
    assert killed_at["status"] == "running"  # nothing got to say it stopped
    ckpt_step = checkpoint.load(checkpoint.latest(run_dir))["step"]
    assert 0 < ckpt_step < 2 * STEPS_PER_EPOCH and ckpt_step % STEPS_PER_EPOCH != 0, ckpt_step  # mid-epoch

    r = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--threads", "1"])
    assert r.exit_code == 0, r.output
    resumed = json.loads((run_dir / "run.json").read_text())
    reference = train(data, tmp_path / "reference", fast_config(**settings(learnable_model_dir)))

    assert resumed["status"] == "finished" and resumed["steps"] == reference["steps"] == 2 * STEPS_PER_EPOCH
    assert resumed["final_val_loss"] == pytest.approx(reference["final_val_loss"], abs=1e-3)
    assert resumed["best_val_loss"] == pytest.approx(reference["best_val_loss"], abs=1e-6)
    assert resumed["adapter_sha256"] == reference["adapter_sha256"]  # the same best adapter, bit for bit
    assert resumed["resumes"][0]["from_step"] <= ckpt_step and resumed["started_at"] == killed_at["started_at"]

    got, want = metrics(run_dir), metrics(tmp_path / "reference")
    assert [m["step"] for m in got] == [m["step"] for m in want]  # no duplicated or missing rows
    for a, b in zip(got, want, strict=True):
        for key in ("train_loss", "val_loss", "lr", "epoch", "grad_norm"):
            assert a.get(key) == pytest.approx(b.get(key), abs=1e-6), (a["step"], key)
    assert not (run_dir / checkpoint.CHECKPOINTS).exists()  # a finished run keeps only its best adapter


def test_only_the_newest_checkpoints_are_kept_and_resume_refuses_what_it_cannot_continue(
        learnable_model_dir, data, tmp_path, monkeypatch):
    from privtune.train.sft import Loop

    real = Loop.step

    def crash_before_step_12(self, group):
        if self.state.step == 11:
            raise KeyboardInterrupt
        return real(self, group)

    monkeypatch.setattr(Loop, "step", crash_before_step_12)
    out = tmp_path / "run"
    cfg = fast_config(learnable_model_dir, epochs=1, batch_size=4, checkpoint_every=2, keep_checkpoints=2)
    with pytest.raises(KeyboardInterrupt):
        train(data, out, cfg)
    monkeypatch.undo()
    assert [p.name for p in checkpoint.checkpoint_dirs(out)] == ["step-00000008", "step-00000010"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and run["steps"] == 11
    with pytest.raises(InputError, match="not empty .* --resume"):
        train(data, out, cfg)
    finished = resume(out)
    assert finished["status"] == "finished" and finished["steps"] == STEPS_PER_EPOCH
    assert finished["resumes"] == [{"at": finished["resumes"][0]["at"], "from_step": 10, "checkpoint": "step-00000010"}]
    assert not (out / "checkpoints").exists() and not (out / ".lock").exists()
    with pytest.raises(InputError, match="already finished"):
        resume(out)
    with pytest.raises(InputError, match="not a run directory"):
        resume(tmp_path / "nothing")

    partial = tmp_path / "partial"  # stopped before its first checkpoint
    fsio.ensure_private_dir(partial)
    fsio.write_json(partial / "run.json", dict(run, status="running"))
    with pytest.raises(InputError, match="no checkpoint"):
        resume(partial)

    changed = tmp_path / "changed"  # the dataset was edited since the run started
    shutil.copytree(tmp_path / "run", changed)
    fsio.write_json(changed / "run.json", dict(run, status="running", dataset={**run["dataset"],
                                                                             "manifest_sha256": "0" * 64}))
    checkpoint.save(changed, {"step": 1, "model": {}, "loop": {}}, keep=1)
    with pytest.raises(InputError, match="dataset changed"):
        resume(changed)


def test_checkpoint_files(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    payload = {"step": 7, "model": checkpoint.trainable_state(model), "rng": checkpoint.capture_rng(),
               "loop": {"best_val_loss": float("inf")}}
    for step in (5, 10, 15):
        checkpoint.save(tmp_path, {**payload, "step": step}, keep=2)
    (tmp_path / "checkpoints" / ".step-00000020.abc.tmp").mkdir()  # what a kill during a write leaves
    assert [p.name for p in checkpoint.checkpoint_dirs(tmp_path)] == ["step-00000010", "step-00000015"]
    checkpoint.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000010", "step-00000015"]

    loaded = checkpoint.load(checkpoint.latest(tmp_path))
    assert loaded["step"] == 15 and list(loaded["model"]) == ["weight"]
    with torch.no_grad():
        model.weight.zero_()
    checkpoint.load_trainable_state(model, loaded["model"])
    assert torch.equal(model.weight, payload["model"]["weight"])

    # RNG round trip: the same draws after restoring
    import random

    import numpy as np
    checkpoint.restore_rng(loaded["rng"])
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    checkpoint.restore_rng(loaded["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == a

    # encrypted at rest when a key is configured, and still loadable
    key_file = tmp_path / "keys" / "k.key"
    crypto.keygen(key_file)
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key_file))
    enc = checkpoint.save(tmp_path / "enc", payload, keep=1)
    assert crypto.is_encrypted(enc / checkpoint.STATE_FILE)
    assert torch.equal(checkpoint.load(enc)["model"]["weight"], payload["model"]["weight"])


def test_truncate_metrics_drops_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (0, 3, 6, 9)) + '{"step": 1')
    assert checkpoint.truncate_metrics(path, 6) == 3
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 3, 6]


def test_resume_refuses_a_run_another_process_holds(learnable_model_dir, data, tmp_path):
    out = tmp_path / "run"
    fsio.ensure_private_dir(out)
    fsio.write_json(out / "run.json", {"status": "running", "config": {}, "dataset": {"path": str(data)}})
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another privtune process"):
            resume(out)
    finally:
        os.close(fd)


def test_cli_resume_rejects_other_inputs(tmp_path, data):
    r = CliRunner().invoke(app, ["train", "--resume", str(tmp_path), "--data", str(data)])
    assert r.exit_code == 2 and "drop --data" in r.output
    r = CliRunner().invoke(app, ["train", "--data", str(data)])
    assert r.exit_code == 2 and "--out are required" in r.output
