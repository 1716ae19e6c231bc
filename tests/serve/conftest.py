"""Fixtures: two adapters on the tiny llama, loaded once per session like `privtune serve` loads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import make_run_dir


@pytest.fixture(scope="session")
def tiny_runs(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Two adapters on the tiny base: 'support' and 'legal'."""
    root = tmp_path_factory.mktemp("runs")
    return {"support": make_run_dir(tiny_model_dir, root / "support", seed=1),
            "legal": make_run_dir(tiny_model_dir, root / "legal", seed=2)}


@pytest.fixture(scope="session")
def tiny_served(tiny_runs, tmp_path_factory):
    """Base + both adapters loaded once for the whole session (as `privtune serve` would)."""
    import torch

    from privtune.serve.loader import load_served

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("served-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRIVTUNE_HOME", str(home))
        mp.setenv("PRIVTUNE_MODELS_DIR", str(home / "models"))
        return load_served(tiny_runs)
