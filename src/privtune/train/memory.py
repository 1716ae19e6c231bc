"""Training memory on CPU: frozen base weights stored in bfloat16, and glibc's allocator told to give memory back.

Frozen weights (`frozen_weights: bfloat16`, LoRA only). In LoRA the base weights never change, yet in float32
they are most of a small model's training memory (540 MB of SmolLM2-135M's ~1.6 GB peak). Storing them in
bfloat16 halves that. Computing in bfloat16 is no answer on CPUs without native bf16 (AVX-512 BF16/AMX): there a
bf16 matmul is ~8x slower than fp32. So each layer upcasts its weight for the one matmul that needs it, and its
backward upcasts it again instead of keeping a float32 copy alive for the whole step. The adapter is fitted
against the base rounded to bfloat16 (like QLoRA against its 4-bit base).

Allocator (`cpu_malloc_mmap_kb`). glibc raises its mmap threshold each time a large block is freed, up to 32 MB,
so a training step's activations end up in the heap, where freed memory is kept rather than returned: peak RSS
grows by hundreds of MB over the live tensors. Pinning the threshold stops that; below ~1 MB it costs speed
(every activation becomes an mmap + page faults).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROWS = 8192  # weight rows upcast at a time: the 49k-row LM head would otherwise need a 113 MB float32 copy


class _UpcastMatmul(torch.autograd.Function):
    """y = x W^T + b with W stored low-precision and frozen: the backward needs W only, which it upcasts again."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(weight)
        y = torch.cat([F.linear(x, weight[i:i + ROWS].to(x.dtype)) for i in range(0, weight.shape[0], ROWS)], -1)
        return y if bias is None else y + bias.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        out = grad[..., :ROWS] @ weight[:ROWS].to(grad.dtype)
        for i in range(ROWS, weight.shape[0], ROWS):
            out += grad[..., i:i + ROWS] @ weight[i:i + ROWS].to(grad.dtype)
        return out, None, None


class UpcastLinear(nn.Linear):
    """An nn.Linear (so PEFT wraps it like any other) whose frozen weight lives in a smaller dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _UpcastMatmul.apply(x, self.weight, self.bias)


class UpcastEmbedding(nn.Embedding):
    """Looks rows up in the low-precision table and hands float32 on, so the rest of the model runs in float32."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids).float()


def _frozen(t: torch.Tensor | None, dtype: torch.dtype) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.detach().to(dtype), requires_grad=False)


def store_frozen_weights(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Swap every Linear and Embedding of `model` (before PEFT wraps it) for its upcasting twin with weights in
    `dtype`; tied weights (LM head = embedding) stay one tensor; every other parameter becomes float32. Load the
    model in `dtype` already, so no float32 copy is ever resident. Returns the bytes saved against float32."""
    saved = 0
    converted: dict[int, nn.Parameter] = {}  # id(old weight) -> new parameter: keeps ties tied

    def convert(p: nn.Parameter | None) -> nn.Parameter | None:
        nonlocal saved
        if p is None:
            return None
        if id(p) not in converted:
            converted[id(p)] = _frozen(p, dtype)
            saved += p.numel() * (4 - converted[id(p)].element_size())
        return converted[id(p)]

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                new = UpcastLinear(child.in_features, child.out_features, bias=child.bias is not None, device="meta")
                new.weight, new.bias = convert(child.weight), convert(child.bias)
            elif type(child) is nn.Embedding:
                new = UpcastEmbedding(child.num_embeddings, child.embedding_dim, padding_idx=child.padding_idx,
                                      device="meta")
                new.weight = convert(child.weight)
            else:
                continue
            setattr(parent, name, new)
    kept = {id(p) for p in converted.values()}
    for p in model.parameters():  # norms and the like: small, and they belong in float32
        if id(p) not in kept and p.is_floating_point() and p.dtype != torch.float32:
            p.data = p.data.float()
    return saved


def load_stored_as(base, dtype: torch.dtype):
    """The base model in `dtype`, read from a copy cached in that dtype under PRIVTUNE_HOME/models/ (written the
    first time): converting from the float32 files while loading would hold both copies at once."""
    from transformers import AutoModelForCausalLM

    from privtune import fsio
    from privtune.models import load_model, models_dir

    cache = models_dir() / f"{Path(base.path).name}-{base.weights_sha256[:12]}-{str(dtype).removeprefix('torch.')}"
    if not (cache / "config.json").is_file():
        model = load_model(base, dtype)
        with fsio.staged_dir(cache) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
        return model
    return AutoModelForCausalLM.from_pretrained(cache, dtype=dtype, trust_remote_code=False, local_files_only=True)


def tune_cpu_allocator(threshold_kb: int | None) -> bool:
    """Pin glibc's mmap and trim thresholds (process-wide; `privtune train` is its own process). False where the
    C library is not glibc or the call is refused."""
    import ctypes
    import sys

    if not threshold_kb or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        size = int(threshold_kb) * 1024
        return libc.mallopt(m_mmap_threshold, size) == 1 and libc.mallopt(m_trim_threshold, size) == 1
    except (OSError, AttributeError):
        return False
