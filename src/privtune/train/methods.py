"""Model setup per training method: which weights train, how the base is loaded, where the result is saved.

| method | base weights | trained | saved as |
|---|---|---|---|
| lora, cpt, distill | float32 | LoRA A/B | RUN_DIR/adapter (PEFT) |
| dora | as lora | LoRA A/B + magnitude vector (weight-decomposed LoRA) | RUN_DIR/adapter (PEFT) |
| qlora | 4-bit NF4, double quant (bitsandbytes, CUDA only) | LoRA A/B | RUN_DIR/adapter (PEFT) |
| full | float32 | every weight | RUN_DIR/model (safetensors + tokenizer) |
| dpo | as lora; see dpo.py (TRL DPOTrainer) | LoRA A/B | RUN_DIR/adapter (PEFT) |

The checks that can fail on user input (`check_method`) run before RUN_DIR is created.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from privtune.config import QLoraConfig, TrainConfig
from privtune.errors import InputError

log = logging.getLogger(__name__)

ADAPTER_METHODS = ("lora", "dora", "qlora", "cpt", "distill", "dpo")
QLORA_NEEDS_CUDA = "QLoRA needs a CUDA GPU with bitsandbytes; use --method lora on CPU"


def artefact_dir(method: str) -> str:
    """Name of the trained artefact inside RUN_DIR: `model` for full fine-tuning, `adapter` otherwise."""
    return "model" if method == "full" else "adapter"


def check_method(cfg: TrainConfig, *, cuda_available: bool | None = None, bnb_available: bool | None = None) -> None:
    """Refuse a method this machine cannot run, in one line, before anything is loaded or written."""
    if cfg.frozen_weights != "float32" and (cfg.method != "lora" or cfg.dp.enabled):
        raise InputError(f"frozen_weights={cfg.frozen_weights} is for --method lora without DP (this run: "
                         f"{cfg.method}{', DP' if cfg.dp.enabled else ''})", field="frozen_weights")
    if cfg.method != "qlora":
        return
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if bnb_available is None:
        import importlib.util

        bnb_available = importlib.util.find_spec("bitsandbytes") is not None
    if not cuda_available or cfg.device == "cpu":
        raise InputError(QLORA_NEEDS_CUDA, field="method")
    if not bnb_available:
        raise InputError("QLoRA needs bitsandbytes: pip install bitsandbytes (CUDA build)", field="method")


def bnb_4bit_kwargs(q: QLoraConfig) -> dict[str, Any]:
    """Keyword arguments of transformers.BitsAndBytesConfig for a QLoRA base (pure: testable without CUDA)."""
    import torch

    return {"load_in_4bit": True, "bnb_4bit_quant_type": q.quant_type, "bnb_4bit_use_double_quant": q.double_quant,
            "bnb_4bit_compute_dtype": getattr(torch, q.compute_dtype)}


def peft_lora_config(cfg: TrainConfig, targets: list[str]):
    """The PEFT LoraConfig of an adapter method (DoRA is LoRA with the weight decomposition switched on)."""
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(task_type="CAUSAL_LM", r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                          lora_dropout=cfg.lora.dropout, target_modules=targets, bias="none",
                          use_dora=cfg.method == "dora")


def load_base_for(base, cfg: TrainConfig):
    """The base model as the method needs it: 4-bit on the GPU for qlora, else in `frozen_weights` (float32)."""
    if cfg.method != "qlora":
        from privtune.models import load_model

        if cfg.frozen_weights == "float32":
            return load_model(base)
        import torch

        from privtune.train.memory import load_stored_as

        return load_stored_as(base, getattr(torch, cfg.frozen_weights))  # made trainable-safe by setup_model
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(
        base.path, quantization_config=BitsAndBytesConfig(**bnb_4bit_kwargs(cfg.qlora)), device_map={"": 0},
        dtype=getattr(torch, cfg.qlora.compute_dtype), trust_remote_code=False, local_files_only=True)
    # casts norms to fp32 and enables input grads; gradient checkpointing stays a separate choice
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def setup_model(base, cfg: TrainConfig, device, lora_targets) -> tuple[Any, list[str]]:
    """(model ready to train, LoRA target modules) for cfg.method; `lora_targets(model, wanted)` picks targets."""
    import torch
    from peft import get_peft_model

    from privtune.train.memory import tune_cpu_allocator

    if cfg.device != "cuda" and tune_cpu_allocator(cfg.cpu_malloc_mmap_kb):
        log.debug("glibc mmap/trim threshold pinned at %d KB", cfg.cpu_malloc_mmap_kb)
    model = load_base_for(base, cfg)
    model.config.use_cache = False
    if cfg.frozen_weights != "float32":
        from privtune.train.memory import store_frozen_weights

        saved = store_frozen_weights(model, getattr(torch, cfg.frozen_weights))
        log.info("frozen base weights stored in %s: %.0f MB less", cfg.frozen_weights, saved / 2**20)
    if cfg.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model.to(device), []
    targets = lora_targets(model, cfg.lora.target_modules)
    torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn from the global generator
    with warnings.catch_warnings():  # PEFT still calls a transformers API deprecated in 5.x
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = get_peft_model(model, peft_lora_config(cfg, targets))
    if cfg.method != "qlora":  # a 4-bit model is already placed by device_map and cannot be moved
        model.to(device)
    return model, targets


def run(data_dir, out, cfg: TrainConfig) -> dict:
    """`privtune train`: the recipe for cfg.method (sft.py for the SFT family, cpt/dpo/distill for the others)."""
    if cfg.method == "dpo":
        from privtune.train.dpo import train
    elif cfg.method == "cpt":
        from privtune.train.cpt import train
    elif cfg.method == "distill":
        from privtune.train.distill import train
    else:  # lora, dora, qlora, full
        from privtune.train.sft import train
    return train(data_dir, out, cfg)
