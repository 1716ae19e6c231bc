"""Helpers for training tests: synthetic prepared datasets and fast configs (imported by the test modules)."""

from __future__ import annotations

import json
from pathlib import Path

from privtune.config import TrainConfig

PROMPTS = ["I lost my card", "Transfer failed twice", "Please reset my password", "Someone used my account"]


def record(i: int, label: int | str, prompt: str | None = None) -> dict:
    return {"id": f"r{i}", "messages": [{"role": "user", "content": (prompt or PROMPTS[i % 4]) + "!" * (i % 3)},
                                        {"role": "assistant", "content": str(label)}],
            "metadata": {"category": str(label)}}


def write_dataset(out: Path, train: list[dict], val: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (out / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    (out / "manifest.json").write_text(json.dumps({"counts": {"train": len(train), "val": len(val)}}))
    return out


def fast_config(base: Path, **kw) -> TrainConfig:
    """Settings for second-scale runs on the tiny model (one thread: tiny matmuls only lose from threading)."""
    defaults = dict(base=str(base), epochs=3, batch_size=8, learning_rate=1e-2, num_threads=1, log_every=3)
    defaults.update(kw)
    return TrainConfig(**defaults)
