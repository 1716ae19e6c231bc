"""Merged export: base + LoRA folded into one plain transformers model (safetensors, tokenizer, chat template).

Every other export starts from this one. The merge is verified, not assumed: the saved model is loaded back
and its greedy output on the verification prompts must equal the unmerged base+adapter's, token for token.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.errors import InputError

log = logging.getLogger(__name__)

# used when the run's dataset is gone: generic, PII-free prompts
FALLBACK_PROMPTS = [
    "My card was stolen yesterday, what should I do first?",
    "Summarise in one sentence why a bank transfer can fail.",
    "Classify this ticket: 'I cannot log in to online banking.'",
    "Write a short, polite reply confirming a replacement card is on its way.",
    "What does a standing order do?",
    "List three things to check before sending money abroad.",
]


@dataclass
class Lineage:
    run_dir: str
    adapter_sha256: str
    base: dict[str, Any]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "adapter_sha256": self.adapter_sha256, "base": self.base,
                "method": self.method}


def verification_messages(run: dict, n: int) -> list[list[dict]]:
    """Up to n chat prompts: the run's held-out records when its dataset is still there, else built-in ones."""
    prompts: list[list[dict]] = []
    data = Path(str((run.get("dataset") or {}).get("path") or ""))
    for split in ("test.jsonl", "val.jsonl"):
        f = data / split
        if not data.parts or not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                msgs = json.loads(line).get("messages") or []
            except (json.JSONDecodeError, AttributeError):
                continue
            if msgs and msgs[-1].get("role") == "assistant":
                msgs = msgs[:-1]
            if msgs and all(isinstance(m.get("content"), str) for m in msgs):
                prompts.append([{"role": m["role"], "content": m["content"]} for m in msgs])
            if len(prompts) >= n:
                return prompts
    for text in FALLBACK_PROMPTS:
        if len(prompts) >= n:
            break
        prompts.append([{"role": "user", "content": text}])
    return prompts


def encode_prompts(tokenizer, conversations: list[list[dict]]) -> list[list[int]]:
    from privtune.evaluate.generate import render_prompt

    return [tokenizer(render_prompt(tokenizer, c), add_special_tokens=False)["input_ids"] for c in conversations]


def greedy(model, prompts: list[list[int]], max_new_tokens: int, stop_ids: list[int]) -> list[list[int]]:
    """Greedy continuation of each prompt alone (no padding: exports are compared token for token)."""
    import torch

    out = []
    with torch.inference_mode():
        for ids in prompts:
            x = torch.tensor([ids])
            gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                 do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=stop_ids, pad_token_id=stop_ids[0])
            new = gen[0, len(ids):].tolist()
            cut = next((i for i, t in enumerate(new) if t in stop_ids), len(new))
            out.append(new[:cut])
    return out


def next_token_agreement(model, prompts: list[list[int]], reference: list[list[int]]) -> float:
    """Teacher-forced: fed the reference continuation, how often the model's top-1 next token is the reference's.
    Robust where greedy exact match is not: one early near-tie flip does not fail a whole sequence."""
    import torch

    hits = total = 0
    with torch.inference_mode():
        for ids, ref in zip(prompts, reference, strict=True):
            if not ref:
                continue
            seq = torch.tensor([ids + ref])
            pred = model(input_ids=seq).logits[0, len(ids) - 1:-1].argmax(-1).tolist()
            hits += sum(int(p == r) for p, r in zip(pred, ref, strict=True))
            total += len(ref)
    return round(hits / total, 4) if total else 1.0


def agreement(a: list[list[int]], b: list[list[int]]) -> dict[str, Any]:
    """Exact-match rate of two sets of generations, and how many leading tokens agree on average."""
    same = [x == y for x, y in zip(a, b, strict=True)]

    def common(x, y):
        n = 0
        for p, q in zip(x, y, strict=False):
            if p != q:
                break
            n += 1
        return n

    return {"prompts": len(same), "exact_match": sum(same), "match_rate": round(sum(same) / max(1, len(same)), 3),
            "mean_common_prefix_tokens": round(sum(common(x, y) for x, y in zip(a, b, strict=True)) / max(1, len(a)), 2),
            "mean_tokens": round(sum(len(x) for x in a) / max(1, len(a)), 2)}


def load_for_export(run_dir: str | Path):
    """(PeftModel, tokenizer, run dict, Lineage) with the run's lineage checked (adapter and base hashes)."""
    from privtune.evaluate.generate import load_run_model

    model, tokenizer, run = load_run_model(run_dir)
    lineage = Lineage(str(Path(run_dir).resolve()), run["_adapter_sha256"], run["_base"],
                      run.get("method") or run.get("config", {}).get("method", "lora"))
    return model, tokenizer, run, lineage


def save_merged(model, tokenizer, out: Path) -> None:
    """Write the merged model; the chat template travels with the tokenizer files."""
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if getattr(tokenizer, "chat_template", None) and not (out / "chat_template.jinja").exists():
        fsio.write_text(out / "chat_template.jinja", tokenizer.chat_template)


def merge_run(run_dir: str | Path, out: Path, n_prompts: int = 5, max_new_tokens: int = 24,
              verify: bool = True) -> dict[str, Any]:
    """Merge the run's adapter into its base and save to `out` (a directory that must not be half-written:
    the caller stages it). Returns the verification record."""
    from transformers import AutoModelForCausalLM

    from privtune.evaluate.generate import stop_token_ids

    t0 = time.time()
    model, tokenizer, run, lineage = load_for_export(run_dir)
    full = run.get("_artefact") == "model"  # a full fine-tune is already one model: nothing to merge
    if not full:
        pcfg = next(iter(model.peft_config.values()))
        if str(getattr(pcfg.peft_type, "value", pcfg.peft_type)) != "LORA":
            raise InputError(f"only LoRA adapters can be merged, this run has {pcfg.peft_type}", where=str(run_dir))
    stops = stop_token_ids(tokenizer, model)
    conversations = verification_messages(run, n_prompts)
    prompts = encode_prompts(tokenizer, conversations)
    reference = greedy(model, prompts, max_new_tokens, stops) if verify else None
    merged = model if full else model.merge_and_unload(safe_merge=True)
    save_merged(merged, tokenizer, out)
    record: dict[str, Any] = {"lineage": lineage.to_dict(), "seconds": None}
    if verify:
        reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, trust_remote_code=False)
        got = greedy(reloaded, prompts, max_new_tokens, stops)
        against = "the run's full model" if full else "unmerged base+adapter"
        record["verify"] = {"against": against, **agreement(reference, got),
                            "max_new_tokens": max_new_tokens}
        if record["verify"]["match_rate"] < 1.0:
            raise RuntimeError(f"merged model disagrees with base+adapter on {len(got) - record['verify']['exact_match']}"
                               f" of {len(got)} prompts; nothing was written")
    record["seconds"] = round(time.time() - t0, 2)
    record["_reference"] = {"prompts": prompts, "generations": reference, "stops": stops}
    return record
