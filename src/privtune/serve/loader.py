"""Load the base model once and every served adapter onto it (PEFT multi-adapter), checking lineage first.

Each adapter must have been trained on the same base weights (sha256 from run.json), and its adapter files
must still hash to what training recorded. The base itself is served under its own name with adapters off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privtune.errors import InputError
from privtune.models import BaseModel
from privtune.registry import crypto

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
BASE_ROW = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch


@dataclass
class ServedAdapter:
    name: str
    run_dir: str
    adapter_sha256: str
    method: str
    rank: int | None


@dataclass
class Served:
    """The loaded model plus what the server needs to route, tokenize and stop."""

    model: Any
    base: BaseModel
    base_name: str
    tokenizers: dict[str, Any]  # served model name -> tokenizer (its chat template)
    adapters: dict[str, ServedAdapter] = field(default_factory=dict)
    mixed: bool = True  # PEFT can mix these adapters in one batch
    eos_ids: set[int] = field(default_factory=set)
    pad_id: int = 0
    max_context: int = 2048
    _current: str | None = None

    @property
    def names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizers[self.base_name].decode(ids, skip_special_tokens=True)

    def forward(self, input_ids, attention_mask, position_ids, cache, adapters: Sequence[str | None]):
        """One forward for a batch; rows name their adapter (None = base)."""
        kwargs: dict[str, Any] = {}
        if self.adapters:
            if self.mixed:
                kwargs["adapter_names"] = [a or BASE_ROW for a in adapters]
            else:
                return self._forward_grouped(input_ids, attention_mask, position_ids, cache, adapters[0])
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, logits_to_keep=1, **kwargs)
        return out.logits[:, -1, :], out.past_key_values

    def _forward_grouped(self, input_ids, attention_mask, position_ids, cache, adapter: str | None):
        """Adapters PEFT cannot mix (DoRA …): the engine batches per adapter; switch it here."""
        import contextlib

        if adapter is not None and adapter != self._current:
            self.model.set_adapter(adapter)
            self._current = adapter
        ctx = self.model.disable_adapter() if adapter is None else contextlib.nullcontext()
        with ctx:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :], out.past_key_values


def parse_adapter_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`NAME=RUN_DIR` (or just RUN_DIR: the name is run.json's adapter_name, else the directory name)."""
    import json

    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            path, name = spec, ""
            run_json = Path(path) / "run.json"
            if run_json.is_file():
                try:
                    name = json.loads(run_json.read_text()).get("adapter_name") or ""
                except (OSError, json.JSONDecodeError):
                    name = ""
            name = name or Path(path).resolve().name
        if not NAME_RE.match(name):
            raise InputError(f"adapter name {name!r} must be 1-128 of A-Z a-z 0-9 . _ : - (starting alphanumeric)",
                             field="adapter")
        if name in out:
            raise InputError(f"adapter name {name!r} given twice", field="adapter")
        out[name] = Path(path)
    return out


def _load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_served(adapters: dict[str, Path], base: str | None = None, dtype: str = "float32") -> Served:
    """Check every run dir (fast, before any model load), then load the base once and attach the adapters."""
    import torch
    from peft import PeftModel

    from privtune.evaluate.generate import (
        artefact_of,
        check_adapter_hash,
        read_run_json,
        resolve_run_base,
        stop_token_ids,
    )
    from privtune.models import load_model, load_tokenizer, resolve_base

    runs = {name: read_run_json(path) for name, path in adapters.items()}
    for name, path in adapters.items():
        if artefact_of(path) == "model":
            raise InputError(f"'{name}' is a full fine-tune (model/), not an adapter on a shared base: serve it with "
                             f"`privtune serve --base {path / 'model'}` (one full model per server)", where=str(path))
    for name, run in runs.items():
        if run.get("status", "finished") != "finished":
            raise InputError(f"run status is {run.get('status')!r}, not 'finished'",
                             where=str(adapters[name] / "run.json"), field="status")
    shas = {name: check_adapter_hash(adapters[name], run) for name, run in runs.items()}
    bases = {name: resolve_run_base(adapters[name], run) for name, run in runs.items()}
    if base is not None:
        chosen = resolve_base(base)
    elif bases:
        chosen = next(iter(bases.values()))
    else:
        chosen = resolve_base(None)
    for name, b in bases.items():
        if b.weights_sha256 != chosen.weights_sha256:
            raise InputError(f"adapter '{name}' was trained on base {b.name} ({b.weights_sha256[:12]}), not "
                             f"{chosen.name} ({chosen.weights_sha256[:12]}); serve adapters of one base together",
                             where=str(adapters[name] / "run.json"), field="base.weights_sha256")
    base_name = chosen.name
    if base_name in adapters:
        raise InputError(f"adapter name {base_name!r} is the base model's name; pick another", field="adapter")

    base_tok = load_tokenizer(chosen)
    tokenizers = {base_name: base_tok}
    model = load_model(chosen, dtype=getattr(torch, dtype))
    served_adapters: dict[str, ServedAdapter] = {}
    mixed = True
    for i, (name, path) in enumerate(adapters.items()):
        # adapters encrypted at rest are decrypted into a private temp dir only while PEFT reads them
        with crypto.decrypted_dir(path / "adapter") as adir:
            tok = _load_tokenizer(adir) if (adir / "tokenizer_config.json").is_file() else base_tok
            if len(tok) != len(base_tok):
                raise InputError(f"adapter tokenizer has {len(tok)} tokens, the base {len(base_tok)}; adapters "
                                 "that resize the vocabulary cannot share a base", where=str(path / "adapter"),
                                 field="tokenizer")
            tokenizers[name] = tok
            try:
                if i == 0:
                    model = PeftModel.from_pretrained(model, adir, adapter_name=name, is_trainable=False)
                else:
                    model.load_adapter(adir, adapter_name=name, is_trainable=False)
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                raise InputError(f"cannot load the adapter ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                                 where=str(path / "adapter")) from None
        pcfg = model.peft_config[name]
        peft_type = str(getattr(pcfg.peft_type, "value", pcfg.peft_type))
        if peft_type != "LORA" or getattr(pcfg, "use_dora", False):
            mixed = False
        served_adapters[name] = ServedAdapter(name, str(path), shas[name], runs[name].get("method", "lora"),
                                              getattr(pcfg, "r", None))
    model.eval()
    eos = set(stop_token_ids(base_tok, model))
    cfg = model.config
    max_ctx = int(getattr(cfg, "max_position_embeddings", 2048) or 2048)
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        if int(cfg.sliding_window) < max_ctx:
            raise InputError("models with sliding-window attention are not supported by privtune serve",
                             where=chosen.path)
    pad = base_tok.pad_token_id if base_tok.pad_token_id is not None else min(eos)
    log.info("serving %s (%s) with adapters %s (%s batches)", base_name, chosen.weights_sha256[:12],
             ", ".join(served_adapters) or "none", "mixed-adapter" if mixed else "per-adapter")
    return Served(model=model, base=chosen, base_name=base_name, tokenizers=tokenizers, adapters=served_adapters,
                  mixed=mixed, eos_ids=eos, pad_id=int(pad), max_context=max_ctx)
