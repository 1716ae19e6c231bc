"""Data parallelism: the same config under `torchrun --nproc_per_node 2` (what `accelerate launch` runs) trains
the same model as one process, and only process 0 writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from train_helpers import fast_config, record, write_dataset

from privtune.train.distributed import Dist
from privtune.train.sft import train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def test_shards_cover_every_item_once():
    items = list(range(7))
    shards = [Dist(r, 3).shard(items) for r in range(3)]
    assert sorted(sum(shards, [])) == items and [len(s) for s in shards] == [3, 2, 2]
    assert Dist().shard(items) == items and Dist().main and not Dist(1, 2).main


@pytest.mark.slow  # two extra interpreters (~1 min on a busy 2-core runner); the tiny model, not the packaged one
def test_two_processes_train_like_one(learnable_model_dir, tmp_path):
    data = write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(24)],
                         [record(i, i % 4) for i in range(24, 32)])
    settings = dict(base=str(learnable_model_dir), epochs=1, batch_size=8, learning_rate=1e-2, num_threads=1,
                    log_every=1, group_by_length=False)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(settings))
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, "PRIVTUNE_LOG": "WARNING", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "privtune.cli", "train", "--data", str(data),
                        "--out", str(tmp_path / "ddp"), "--config", str(tmp_path / "cfg.yaml")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "run.json").read_text())
    single = train(data, tmp_path / "single", fast_config(**settings))
    assert ddp["status"] == "finished" and ddp["steps"] == single["steps"] == 3
    assert ddp["initial_val_loss"] == pytest.approx(single["initial_val_loss"], abs=1e-5)
    assert ddp["final_val_loss"] == pytest.approx(single["final_val_loss"], abs=1e-4)
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2, 3]  # one writer
    ref = [json.loads(line) for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows[1:], ref[1:], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
