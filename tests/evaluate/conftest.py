"""Eval fixtures: a tiny model whose greedy outputs vary by prompt, a run dir with a LoRA adapter written the
way `privtune train` writes one (without depending on train), and a small labelled test set."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

LABELS = ("card_lost", "fraud_report", "account_access")
TEXTS = (
    "The customer lost a card and needs a replacement.", "Please reset my online banking password.",
    "Transfer failed twice, what happened?", "Hello, my name is [PERSON] and my email is [EMAIL_ADDRESS].",
    "Classify the ticket.", "card lost yes", "online banking password reset", "Transfer failed",
    "no maybe 7 8 9", "a replacement card", "What happened to my transfer?", "[PHONE_NUMBER] called twice",
)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here uses tiny models: one torch thread (tests/conftest.py says why)."""


@pytest.fixture(scope="session")
def varied_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama with larger random weights: at the default init every greedy answer is the same newline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("varied-llama") / "model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3, generator=gen)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _write_records(path: Path, n: int = 12, with_category: bool = True) -> Path:
    rows = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        row = {"id": f"r{i:03d}", "messages": [
            {"role": "system", "content": "Classify the ticket. Answer with the label."},
            {"role": "user", "content": TEXTS[i % len(TEXTS)]},
            {"role": "assistant", "content": label}], "metadata": {}}
        if with_category:
            row["metadata"]["category"] = "cards" if label == "card_lost" else "other"
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _make_run(run_dir: Path, model_dir: Path, register: bool = True, *, config_base: str | None = "same",
              identity: bool = False) -> Path:
    """RUN_DIR/adapter + run.json with the fields train records. The LoRA is random and non-zero (tuned != base)
    unless `identity` (PEFT's default init: B = 0, so tuned == base exactly)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from privtune import fsio
    from privtune.models import resolve_base
    from privtune.registry.store import record_run

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with warnings.catch_warnings():  # PEFT 0.21 calls a transformers 5 API that is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=identity, task_type="CAUSAL_LM"))
    fsio.ensure_private_dir(run_dir)
    peft_model.save_pretrained(run_dir / "adapter", safe_serialization=True)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(run_dir / "adapter")
    config_base = str(model_dir) if config_base == "same" else config_base
    base = resolve_base(config_base)
    run = {"config": {"base": config_base, "method": "lora"}, "base": base.to_dict(), "method": "lora",
           "dataset": {"path": str(run_dir.parent / "dataset"), "manifest_sha256": "0" * 64},
           "adapter_sha256": fsio.sha256_dir(run_dir / "adapter"), "status": "finished",
           "best_epoch": 1, "best_val_loss": 1.0}
    fsio.write_json(run_dir / "run.json", run)
    if register:
        record_run(run_dir, run)
    return run_dir


@pytest.fixture
def write_records():
    """write_records(path, n=12, with_category=True): a labelled chat test set, 3 labels, 2 categories."""
    return _write_records


@pytest.fixture
def run_dir(tmp_path, varied_model_dir) -> Path:
    """A registered run with a LoRA adapter on the varied tiny model."""
    return _make_run(tmp_path / "run", varied_model_dir)


@pytest.fixture
def make_run():
    """make_run(run_dir, model_dir, register=True, *, config_base="same", identity=False)."""
    return _make_run
