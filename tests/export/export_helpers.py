"""Run directories shaped like `privtune train` output, for the export tests."""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_run(base_dir: Path, out: Path, seed: int = 1, r: int = 4, use_dora: bool = False,
             chat_template: str | None = None) -> Path:
    """Shaped like `privtune train` output; the adapter's weights are random so it changes the base's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from privtune import fsio

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=r, lora_alpha=r, target_modules=TARGETS, init_lora_weights=False,
                                      use_dora=use_dora))
    model.save_pretrained(out / "adapter")
    tok = AutoTokenizer.from_pretrained(base_dir)
    if chat_template is not None:
        tok.chat_template = chat_template
    tok.save_pretrained(out / "adapter")
    weights = fsio.sha256_file(base_dir / "model.safetensors")
    run = {"status": "finished", "method": "lora", "adapter_name": out.name, "config": {"base": str(base_dir)},
           "base": {"name": base_dir.name, "path": str(base_dir), "source": str(base_dir),
                    "source_sha256": weights, "weights_sha256": weights},
           "adapter_sha256": fsio.sha256_dir(out / "adapter")}
    (out / "run.json").write_text(json.dumps(run))
    return out
