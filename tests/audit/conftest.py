"""Audit fixtures: a tiny dataset directory with canaries inserted the way prepare inserts them, and a run on it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

TICKETS = (
    "My card was stolen yesterday, please block it. Call me on 555-201-7788.",
    "I was charged a fee twice this month, can you refund it?",
    "The transfer to my landlord failed, what happened?",
    "Please update my address, I moved to a new flat.",
    "Someone used my card abroad, I did not make these payments.",
    "I cannot log in to online banking since this morning.",
)
LABELS = ("card_lost", "fee_dispute", "transfer_failed", "address_change", "fraud_report", "account_locked")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here uses tiny models: one torch thread (tests/conftest.py says why)."""


def write_dataset(out: Path, n_train: int = 12, n_test: int = 6, canaries: int = 2) -> Path:
    from privtune import fsio
    from privtune.audit.canaries import insert_canaries

    def rec(i: int) -> dict:
        return {"id": f"t{i:03d}", "messages": [
            {"role": "system", "content": "Classify the ticket."},
            {"role": "user", "content": TICKETS[i % len(TICKETS)] + f" Ref {i}."},
            {"role": "assistant", "content": LABELS[i % len(LABELS)]}], "metadata": {"category": LABELS[i % 6]}}

    fsio.ensure_private_dir(out)
    fsio.write_jsonl(out / "train.jsonl", [rec(i) for i in range(n_train)])
    fsio.write_jsonl(out / "test.jsonl", [rec(100 + i) for i in range(n_test)])
    fsio.write_jsonl(out / "val.jsonl", [rec(200 + i) for i in range(2)])
    manifest = {"sources": [], "counts": {"train": n_train}}
    if canaries:
        manifest["canaries"] = insert_canaries(out / "train.jsonl", canaries, 42, out, rng=random.Random(7))
    fsio.write_json(out / "manifest.json", manifest)
    return out


@pytest.fixture
def dataset_dir(tmp_path) -> Path:
    return write_dataset(tmp_path / "dataset")


@pytest.fixture
def audit_run(tmp_path, dataset_dir, varied_model_dir) -> Path:
    """A run whose run.json points at `dataset_dir` (LoRA adapter made like train makes one)."""
    from tests.evaluate.conftest import _make_run

    from privtune import fsio

    run_dir = _make_run(tmp_path / "run", varied_model_dir)
    run = json.loads((run_dir / "run.json").read_text())
    run["dataset"] = {"path": str(dataset_dir), "manifest_sha256": fsio.sha256_file(dataset_dir / "manifest.json")}
    fsio.write_json(run_dir / "run.json", run)
    return run_dir


@pytest.fixture(scope="session")
def varied_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama with larger random weights, so answers and log-probs differ between inputs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("audit-llama") / "model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3, generator=gen)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out
