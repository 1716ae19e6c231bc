"""Resumable checkpoints: everything a killed run needs to continue as if it had never stopped.

A checkpoint is RUN_DIR/checkpoints/step-NNNNNNNN/state.pt holding the trainable (adapter) weights, the
optimizer and scheduler states, every RNG state (python, numpy, torch, CUDA), the loop state (data position,
best val loss, patience counter, timings, metrics window) and a fingerprint of what was trained on. Each is
built in a temp sibling and renamed into place (encrypted when a key is configured, like the adapter), so a
`kill -9` at any moment leaves either the previous or the new checkpoint, never a torn one. Only the newest
`keep` are kept; a finished run deletes them (they hold weights derived from the data).
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from pathlib import Path

import torch

from privtune import fsio
from privtune.registry import crypto

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})$")


# ------------------------------------------------------------------------------------------- RNG states
def capture_rng() -> dict:
    """Every generator the loop draws from, as plain types + tensors (loadable with weights_only=True)."""
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------- trainable weights
def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters being trained (LoRA A/B), by name, copied to CPU."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable weights back in place; the names must match exactly (same model, same adapter)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ValueError(f"checkpoint does not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state[n].to(p.device, p.dtype))


# ------------------------------------------------------------------------------------------- files
def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp siblings of an interrupted write are not listed)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / STATE_FILE).is_file())


def latest(run_dir: Path) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def save(run_dir: Path, payload: dict, keep: int) -> Path:
    """Write checkpoint `payload['step']` atomically, then drop all but the newest `keep`."""
    final = Path(run_dir) / CHECKPOINTS / f"step-{payload['step']:08d}"
    with crypto.encrypted_output(final) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp / STATE_FILE)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load(path: Path) -> dict:
    """A checkpoint's payload (decrypted in memory when encrypted at rest); tensors on CPU."""
    blob = crypto.read_bytes_maybe_encrypted(Path(path) / STATE_FILE)
    payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {payload.get('format')}")
    return payload


def remove_all(run_dir: Path) -> None:
    shutil.rmtree(Path(run_dir) / CHECKPOINTS, ignore_errors=True)


def remove_stale_temps(run_dir: Path) -> None:
    """Half-built checkpoint dirs that a kill left behind (names start with a dot)."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True)


def truncate_metrics(path: Path, step: int) -> int:
    """Keep only metrics rows up to `step` (rows after the checkpoint will be written again); returns rows kept."""
    path = Path(path)
    if not path.is_file():
        return 0
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line torn by the kill
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            rows.append(row)
    fsio.write_jsonl(path, rows)
    return len(rows)
