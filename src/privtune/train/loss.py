"""Next-token loss on supervised positions only, with the LM head applied only where a label exists.

In SFT most positions are prompt/template tokens whose logits are thrown away; on a 135M model with a 49k
vocabulary the LM head and its softmax are a fifth of the forward pass. So the decoder body runs on the whole
batch, the hidden states at positions with a (shifted) label are gathered, and only those go through the head.
Architectures that post-process logits (soft-capping, scaling) would make this wrong, so the fast path is
checked once against the model's own full-logits forward and replaced by it if they disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

from privtune.train.collate import IGNORE

log = logging.getLogger(__name__)

LossFn = Callable[[dict], tuple[torch.Tensor, int]]  # batch → (sum of token losses, number of tokens)


def _shifted(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Position t predicts token t+1: returns (targets at predicting positions, mask of supervised positions)."""
    target = labels[:, 1:]
    return target, target != IGNORE


def body_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder body, lm_head) of a causal LM (PEFT-wrapped or not), or None if it does not have that shape."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    body = getattr(inner, "model", None)
    if body is None and hasattr(inner, "get_decoder"):
        body = inner.get_decoder()
    if head is None or body is None or body is inner or not isinstance(head, torch.nn.Linear):
        return None
    return body, head


def label_position_loss(body: torch.nn.Module, head: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
    out = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    target, mask = _shifted(batch["labels"])
    picked = hidden[:, :-1][mask]  # (n_supervised, hidden)
    logits = head(picked).float()
    return F.cross_entropy(logits, target[mask], reduction="sum"), int(mask.sum())


def full_logits_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    target, mask = _shifted(batch["labels"])
    return F.cross_entropy(logits[:, :-1][mask].float(), target[mask], reduction="sum"), int(mask.sum())


# config fields of architectures that transform logits after the LM head (soft-capping, scaling); a numeric
# check alone can miss soft-capping, which only bites once logits grow during training
LOGIT_POSTPROCESSING = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def postprocesses_logits(config) -> bool:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return any(getattr(c, name, None) not in (None, 1, 1.0)
               for c in {id(config): config, id(text_config): text_config}.values() for name in LOGIT_POSTPROCESSING)


def make_loss_fn(model, probe: dict, rtol: float = 1e-4) -> tuple[LossFn, str]:
    """The fast label-position loss if it matches the full-logits loss on `probe`, else the full-logits loss."""
    parts = body_and_head(model)
    if parts is None or postprocesses_logits(model.config):
        log.warning("model transforms its logits or has an unknown layout: computing full logits (slower)")
        return (lambda b: full_logits_loss(model, b)), "full_logits"
    body, head = parts
    was_training = model.training
    model.eval()
    with torch.no_grad():
        fast, n = label_position_loss(body, head, probe)
        full, _ = full_logits_loss(model, probe)
    model.train(was_training)
    if n == 0 or not torch.isclose(fast, full, rtol=rtol, atol=1e-5 * n):
        log.warning("label-position loss disagrees with the model's logits (%.6g vs %.6g): computing full logits",
                    float(fast), float(full))
        return (lambda b: full_logits_loss(model, b)), "full_logits"
    return (lambda b: label_position_loss(body, head, b)), "label_positions"
