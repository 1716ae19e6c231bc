"""vLLM export: one base, many LoRA adapters, served by `vllm serve --enable-lora --lora-modules name=path`.

The directory is self-contained (base weights copied in, adapters copied, the chat template as a file), so it
can be copied to a GPU host as is. Checks done here, without vLLM: adapter options vLLM cannot serve (DoRA,
biases, modules_to_save, unsupported target modules) are refused; --max-lora-rank is the smallest value vLLM
accepts that fits every adapter; each copied adapter is loaded on the copied base and must reproduce the
run's logits; the launch script is syntax-checked with `bash -n`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.errors import InputError

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_LLAMA_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens",
                      "lm_head"}
BASE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt")


def check_adapter(name: str, adapter_config: dict) -> int:
    """The adapter's rank, or InputError naming the option vLLM would reject."""
    where = f"adapter '{name}' adapter_config.json"
    if adapter_config.get("peft_type", "LORA") != "LORA":
        raise InputError(f"vLLM serves LoRA adapters only, not {adapter_config.get('peft_type')}", where=where)
    if adapter_config.get("use_dora"):
        raise InputError("vLLM cannot serve DoRA adapters; export --format merged instead", where=where,
                         field="use_dora")
    if adapter_config.get("bias", "none") != "none":
        raise InputError("vLLM cannot serve LoRA adapters with trained biases", where=where, field="bias")
    if adapter_config.get("modules_to_save"):
        raise InputError("vLLM cannot serve adapters with modules_to_save; export --format merged instead",
                         where=where, field="modules_to_save")
    targets = adapter_config.get("target_modules") or []
    if isinstance(targets, str):
        raise InputError("target_modules given as a regex cannot be checked against vLLM's supported modules",
                         where=where, field="target_modules")
    unsupported = sorted(set(targets) - VLLM_LLAMA_TARGETS)
    if unsupported:
        raise InputError(f"vLLM's llama LoRA does not cover {', '.join(unsupported)}", where=where,
                         field="target_modules")
    return int(adapter_config.get("r", 8))


def lora_rank_flag(ranks: list[int]) -> int:
    need = max(ranks)
    for r in VLLM_LORA_RANKS:
        if r >= need:
            return r
    raise InputError(f"LoRA rank {need} exceeds vLLM's largest supported rank {VLLM_LORA_RANKS[-1]}", field="r")


def copy_base(base_path: Path, dest: Path) -> None:
    """Weights and tokenizer of the base (copied, never linked: the export's file modes must not touch the
    user's originals)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(base_path.iterdir()):
        if f.is_file() and (f.suffix == ".safetensors" or f.name in BASE_FILES or f.name.endswith(".index.json")):
            shutil.copyfile(f, dest / f.name)


def launch_script(base_ref: str, base_name: str, adapters: dict[str, str], max_rank: int, max_len: int,
                  dtype: str, header: str) -> str:
    """bash script; paths relative to the script's directory so the export can move as a whole."""
    modules = " \\\n    ".join(f'{shlex.quote(n)}="$HERE/{p}"' for n, p in adapters.items())
    base = f'"$HERE/{base_ref}"' if not base_ref.startswith("/") else shlex.quote(base_ref)
    lines = ["#!/usr/bin/env bash"] + [f"# {h}" for h in header.splitlines()] + [
        "# Needs a GPU host with vLLM installed (pip install vllm). Environment overrides: HOST, PORT, DTYPE,",
        "# MAX_MODEL_LEN, GPU_MEMORY_UTILIZATION, VLLM_API_KEY (clients then send it as a Bearer token).",
        "# Extra arguments are passed to `vllm serve` unchanged.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        "args=(",
        f"  serve {base}",
        f"  --served-model-name {shlex.quote(base_name)}",
        '  --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"',
        f'  --dtype "${{DTYPE:-{dtype}}}"',
        f'  --max-model-len "${{MAX_MODEL_LEN:-{max_len}}}"',
        '  --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.9}"',
        '  --chat-template "$HERE/chat_template.jinja"',
        f"  --enable-lora --max-loras {len(adapters)} --max-lora-rank {max_rank}",
        f"  --lora-modules {modules}",
        ")",
        'if [[ -n "${VLLM_API_KEY:-}" ]]; then args+=(--api-key "$VLLM_API_KEY"); fi',
        'exec vllm "${args[@]}" "$@"',
    ]
    return "\n".join(lines) + "\n"


def bash_syntax_ok(script: Path) -> bool:
    bash = shutil.which("bash")
    if bash is None:
        return False
    return subprocess.run([bash, "-n", str(script)], capture_output=True).returncode == 0


def verify_adapter_copy(base_dir: Path, adapter_dir: Path, reference_model, tokenizer) -> dict[str, Any]:
    """Load the copied adapter on the copied base; its logits must equal the run's own base+adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True,
                                                                          dtype=torch.float32),
                                      adapter_dir, is_trainable=False).eval()
    text = "Please reset my online banking password."
    ids = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        a = model(**ids).logits
        b = reference_model(**ids).logits
    diff = (a - b).abs().max().item()
    return {"max_abs_logit_diff": float(f"{diff:.3g}"), "ok": diff < 1e-4}


def write_vllm_config(out: Path, cfg: dict) -> None:
    import yaml

    fsio.write_text(out / "vllm_config.yaml", yaml.safe_dump(cfg, sort_keys=False))
