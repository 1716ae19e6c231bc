"""Load a trained run (base + PEFT adapter) and generate greedy answers in left-padded batches.

Shared by eval, audit and serve: `load_run_model(run_dir)` and `generate(model, tokenizer, prompts, ...)`.
The base with the adapter switched off (`with model.disable_adapter():`) is the baseline, so comparing base
and tuned costs one model load, not two.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privtune.errors import InputError
from privtune.models import BaseModel, resolve_base
from privtune.registry import crypto

log = logging.getLogger(__name__)

Message = dict[str, str]
# end-of-turn markers of common chat templates; whichever exist in the vocabulary also stop generation
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


# ---------------------------------------------------------------------------------------- run dir
def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    """Check RUN_DIR's files without loading a model, so bad input fails in a second, naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("run directory not found", where=str(run_dir))
    path = run_dir / "run.json"
    if not path.is_file():
        raise InputError("no run.json: not a run directory written by `privtune train`", where=str(path))
    try:
        text = crypto.read_text_maybe_encrypted(path)
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 (byte {e.start})", where=str(path)) from None
    try:
        run = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", where=f"{path}:{e.lineno}") from None
    if not isinstance(run, dict):
        raise InputError("run.json must be a JSON object", where=f"{path}:1")
    for key in ("config", "base"):
        if not isinstance(run.get(key), dict):
            raise InputError(f"missing or not an object: '{key}'", where=str(path), field=key)
    adapter_cfg = run_dir / "adapter" / "adapter_config.json"
    if not adapter_cfg.is_file() and not (run_dir / "model" / "config.json").is_file():
        raise InputError("no PEFT adapter (adapter/adapter_config.json) nor full model (model/config.json) in the run "
                         "directory", where=str(adapter_cfg))
    return run


def artefact_of(run_dir: str | Path) -> str:
    """`adapter` for PEFT runs, `model` for full fine-tuning (train's `artefact`; the directory decides)."""
    return "adapter" if (Path(run_dir) / "adapter" / "adapter_config.json").is_file() else "model"


def adapter_sha256(run_dir: str | Path) -> str:
    """Over the plaintext, like train records it: the same whether the artefact is encrypted at rest or not."""
    return crypto.sha256_dir_plaintext(Path(run_dir) / artefact_of(run_dir))


def check_adapter_hash(run_dir: str | Path, run: dict[str, Any]) -> str:
    """The trained artefact (adapter/, or model/ of a full run) must be the one run.json recorded."""
    kind = artefact_of(run_dir)
    actual = adapter_sha256(run_dir)
    recorded = run.get(f"{kind}_sha256")
    if recorded and recorded != actual:
        raise InputError(f"{kind} sha256 {actual[:12]} differs from run.json's {str(recorded)[:12]}: the {kind} "
                         "was modified after training", where=str(Path(run_dir) / kind), field=f"{kind}_sha256")
    return actual


def resolve_run_base(run_dir: str | Path, run: dict[str, Any]) -> BaseModel:
    """The base the adapter was trained on: the recorded model dir if it still exists, else config.base;
    either way its weights must hash to what run.json recorded."""
    recorded = run.get("base") or {}
    path = recorded.get("path")
    if path and (Path(path) / "config.json").is_file():
        base = resolve_base(path)
    else:
        base = resolve_base(run.get("config", {}).get("base"))
    expected = recorded.get("weights_sha256")
    if expected and base.weights_sha256 != expected:
        raise InputError(f"base model weights sha256 {base.weights_sha256[:12]} differ from the {expected[:12]} the "
                         "adapter was trained on", where=str(Path(run_dir) / "run.json"), field="base.weights_sha256")
    return base


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("no CUDA device is available", field="device")
    return device


def load_run_model(run_dir: str | Path, device: str = "auto"):
    """(PeftModel — or the full model of a `--method full` run — in eval mode, tokenizer, run.json dict).

    An adapter encrypted at rest is read through `crypto.decrypted_dir` (plaintext only on tmpfs, wiped after).
    The returned run dict gains `_base` (the resolved BaseModel as a dict) and `_adapter_sha256`.
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    from privtune.models import load_model, load_tokenizer

    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    sha = check_adapter_hash(run_dir, run)
    base = resolve_run_base(run_dir, run)
    if artefact_of(run_dir) == "model":
        model, tokenizer = _load_full_model(run_dir)
        model.to(resolve_device(device)).eval()
        return model, tokenizer, {**run, "_base": base.to_dict(), "_adapter_sha256": sha, "_artefact": "model"}
    model = load_model(base)
    with crypto.decrypted_dir(run_dir / "adapter") as adapter_dir:
        if (adapter_dir / "tokenizer_config.json").is_file():  # train saved the tokenizer it used: prefer it
            tokenizer = AutoTokenizer.from_pretrained(adapter_dir, trust_remote_code=False, local_files_only=True)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer = load_tokenizer(base)
        try:
            with warnings.catch_warnings():  # PEFT calls a transformers API deprecated in 5.x; nothing to do
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
                model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise InputError(f"cannot load the adapter ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                             where=str(run_dir / "adapter")) from None
    model.to(resolve_device(device)).eval()
    run = {**run, "_base": base.to_dict(), "_adapter_sha256": sha, "_artefact": "adapter"}
    return model, tokenizer, run


def _load_full_model(run_dir: Path):
    """A full fine-tuned run's model/ (saved with its tokenizer), decrypted on tmpfs when encrypted at rest."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with crypto.decrypted_dir(run_dir / "model") as model_dir:
        try:
            model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=False, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise InputError(f"cannot load the model ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                             where=str(run_dir / "model")) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# ------------------------------------------------------------------------------------- generation
def render_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """The tokenizer's own chat template, ending with the assistant turn's opening."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template; eval formats prompts with the model's own template",
                         where=str(getattr(tokenizer, "name_or_path", "tokenizer")))
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """eos plus every end-of-turn token the vocabulary knows (a chat model ends its answer with one)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update(int(i) for i in (gen_eos if isinstance(gen_eos, list | tuple) else [gen_eos]))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(ids)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask) tensors with every sequence right-aligned, as decoder-only generation needs."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids, mask


def cut_at_stop(tokens: Sequence[int], stops: set[int]) -> tuple[list[int], bool]:
    """Tokens before the first stop token, and whether a stop token was reached."""
    for i, t in enumerate(tokens):
        if t in stops:
            return list(tokens[:i]), True
    return list(tokens), False


def shared_prefix_len(seqs: Sequence[Sequence[int]], minimum: int = 8) -> int:
    """Tokens every sequence starts with (a system prompt, an instruction), leaving each at least one own token;
    0 when shorter than `minimum` (not worth a separate forward pass)."""
    if len(seqs) < 2:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs) - 1
    for s in seqs[1:]:
        n = next((i for i in range(n) if s[i] != first[i]), n)
    return n if n >= minimum else 0


@dataclass
class Generation:
    texts: list[str]
    new_tokens: list[int]  # generated tokens per record, stop token excluded
    hit_limit: list[bool]  # True where generation ended at max_new_tokens instead of a stop token
    prompt_tokens: list[int]
    shared_prefix_tokens: int  # prompt tokens computed once per batch instead of once per record
    seconds: float


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False, disable=not enabled)


def _batch_inputs(model, seqs: list[list[int]], pad_id: int, share_prefix: bool, device) -> tuple[dict[str, Any], int]:
    """generate() inputs for one batch: [prefix][left padding][own tokens], the shared prefix run once and its
    KV cache repeated over the batch (position ids come from the mask, so the padding in the middle is harmless)."""
    import torch

    p = shared_prefix_len(seqs) if share_prefix else 0
    ids, mask = (t.to(device) for t in left_pad([s[p:] for s in seqs], pad_id))
    if not p:
        return {"input_ids": ids, "attention_mask": mask}, 0
    prefix = torch.tensor([seqs[0][:p]], dtype=torch.long, device=device)
    cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(len(seqs))
    return {"input_ids": torch.cat([prefix.expand(len(seqs), -1), ids], dim=1),
            "attention_mask": torch.cat([torch.ones((len(seqs), p), dtype=torch.long, device=device), mask], dim=1),
            "past_key_values": cache}, p * (len(seqs) - 1)


def generate_detailed(model, tokenizer, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64,
                      batch_size: int = 16, *, desc: str = "generating", show_progress: bool = True,
                      share_prefix: bool = True) -> Generation:
    """Greedy generation for many chat prompts: sorted by length into left-padded batches, KV cache on (and
    a prompt prefix shared by a whole batch computed once), answers returned in the prompts' order."""
    import torch

    t0 = time.perf_counter()
    encoded = [tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)  # longest first: ETA errs high
    stops = stop_token_ids(tokenizer, model)
    stop_set = set(stops)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    device = next(model.parameters()).device
    texts: list[str] = [""] * len(encoded)
    n_new, hit, saved = [0] * len(encoded), [False] * len(encoded), 0
    with _progress(show_progress) as bar, torch.inference_mode():
        task = bar.add_task(desc, total=len(encoded))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            inputs, shared = _batch_inputs(model, [encoded[i] for i in batch], pad_id, share_prefix, device)
            saved += shared
            width = inputs["input_ids"].shape[1]
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 temperature=None, top_p=None, top_k=None,
                                 eos_token_id=stops, pad_token_id=pad_id, use_cache=True)
            for row, i in enumerate(batch):
                new, stopped = cut_at_stop(out[row, width:].tolist(), stop_set)
                texts[i] = tokenizer.decode(new, skip_special_tokens=True).strip()
                n_new[i], hit[i] = len(new), not stopped
            bar.advance(task, len(batch))
    return Generation(texts, n_new, hit, [len(e) for e in encoded], saved, time.perf_counter() - t0)


def generate(model, tokenizer, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64,
             batch_size: int = 16, **kwargs: Any) -> list[str]:
    """Greedy answers (special tokens and surrounding whitespace removed), one per prompt, in order."""
    return generate_detailed(model, tokenizer, prompts, max_new_tokens, batch_size, **kwargs).texts
