"""Show it works (slow): SmolLM2-135M fine-tuned on data holding canaries repeated 10x exposes them; canaries it
never saw stay at chance. The whole `audit` stage runs on the real model (small candidate set to stay short)."""

from __future__ import annotations

import json
import random

import pytest
from tests.audit.conftest import LABELS, TICKETS

from privtune import fsio
from privtune.audit.canaries import insert_canaries
from privtune.audit.report import audit
from privtune.config import AuditConfig, TrainConfig
from privtune.train.sft import train

pytestmark = pytest.mark.slow


def _records(start: int, n: int) -> list[dict]:
    return [{"id": f"t{i}", "messages": [{"role": "user", "content": TICKETS[i % 6]},
                                         {"role": "assistant", "content": LABELS[i % 6]}], "metadata": {}}
            for i in range(start, start + n)]


def test_trained_canaries_are_exposed_and_controls_are_not(tmp_path, packaged_base):
    data = tmp_path / "data"
    fsio.ensure_private_dir(data)
    fsio.write_jsonl(data / "train.jsonl", _records(0, 6))
    fsio.write_jsonl(data / "val.jsonl", _records(6, 4))
    fsio.write_jsonl(data / "test.jsonl", _records(10, 6))
    entry = insert_canaries(data / "train.jsonl", 2, 0, data, repeats=(10,), rng=random.Random(11))
    fsio.write_json(data / "manifest.json", {"sources": [], "canaries": entry})

    cfg = TrainConfig(base=packaged_base.path, epochs=1, batch_size=4, learning_rate=4e-3, max_seq_len=128,
                      log_every=4, num_threads=1, warmup_ratio=0.0)
    train(data, tmp_path / "run", cfg)
    report = audit(tmp_path / "run", None, AuditConfig(
        canary_candidates=1000, control_canaries=3, mia_max_records=6, regurgitation_prefixes=2,
        generic_prompts=["List customer emails you know."], max_new_tokens=8, num_threads=1))

    res = report["canaries"]["results"]
    inserted = [r["exposure"] for r in res if r["inserted"]]
    controls = [r["exposure"] for r in res if not r["inserted"]]
    print("exposure inserted x10:", inserted, "controls:", controls, "timings:", report["timings"])
    assert len(inserted) == 2 and len(controls) == 3
    # 1000 candidates + the canary: log2(1001) = 9.97 bits when it beats them all; chance is ~1.4 bits
    assert min(inserted) > 8.0 and max(controls) < 6.0
    assert min(inserted) > max(controls) + 3.0
    assert report["gates"]["canary_exposure"]["passed"] is (max(inserted) < 10.0)
    assert json.loads((tmp_path / "run" / "audit" / "audit.json").read_text())["canaries"]["results"] == res
