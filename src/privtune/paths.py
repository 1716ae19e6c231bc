"""Where privtune keeps its state: PRIVTUNE_HOME (default ~/.privtune) holds models, registry, audit log."""

from __future__ import annotations

import os
from pathlib import Path


def privtune_home() -> Path:
    return Path(os.environ.get("PRIVTUNE_HOME") or Path.home() / ".privtune").expanduser()


def models_dir() -> Path:
    """Converted-model cache; PRIVTUNE_MODELS_DIR lets several homes (tests, teams) share one cache."""
    override = os.environ.get("PRIVTUNE_MODELS_DIR")
    return Path(override).expanduser() if override else privtune_home() / "models"


def registry_url() -> str:
    return os.environ.get("PRIVTUNE_DB") or f"sqlite:///{privtune_home() / 'registry.sqlite'}"
