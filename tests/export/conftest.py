"""A finished tiny run (random LoRA on the tiny llama) shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import make_run


@pytest.fixture(scope="session")
def tiny_run(tiny_model_dir, tmp_path_factory) -> Path:
    return make_run(tiny_model_dir, tmp_path_factory.mktemp("export-runs") / "support")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared machine spinning threads cost a lot."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
