"""Fixtures for training tests: a tiny model that can actually learn, and synthetic prepared datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from train_helpers import record, write_dataset


@pytest.fixture(scope="session")
def learnable_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama with an untied LM head scaled x10.

    With the shared tiny model's tied 0.02-std embeddings every logit stays within about ±1, so no adapter can
    make a confident prediction and "the loss went down" would be a weak signal. A larger output layer lets
    the tests check that training really learns a mapping.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    out = tmp_path_factory.mktemp("learnable-llama") / "model"
    shutil.copytree(tiny_model_dir, out)
    tied = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cfg = tied.config
    cfg.tie_word_embeddings = False
    untied = LlamaForCausalLM(cfg)
    state = tied.state_dict()
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone() * 10
    untied.load_state_dict(state)
    with torch.no_grad():
        untied.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture()
def label_data(tmp_path) -> Path:
    """64 short prompts → one of 4 single-token labels; val has the same mapping."""
    return write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(64)],
                         [record(i, i % 4) for i in range(64, 80)])


@pytest.fixture()
def shifted_data(tmp_path) -> Path:
    """Train answers are 0/1, val answers are 2/3: val loss falls while the answer format is learnt, then rises."""
    return write_dataset(tmp_path / "shifted", [record(i, i % 2) for i in range(64)],
                         [record(i, 2 + i % 2) for i in range(64, 80)])
