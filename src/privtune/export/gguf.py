"""GGUF export (f16, q8_0) of a merged llama-family model, written tensor by tensor with the `gguf` package.

What llama.cpp, Ollama and transformers need from the file, and where it comes from:
- hyper-parameters under `llama.*` from config.json (rope theta, norm epsilon, heads, kv heads, context);
- tensors renamed to llama.cpp's scheme; the q and k projections re-ordered for llama.cpp's rotary layout
  (pairs of rotary dimensions interleaved instead of in two halves), which loaders undo on the way back;
  1-D norms stay f32; with tied embeddings no `output.weight` is written;
- the tokenizer as a byte-level BPE ("gpt2"): every token, its type (normal / control / user-defined), the
  merges, the special token ids, and the pre-tokenizer name (copied from the base's own GGUF when it came
  from one, else recognised from tokenizer.json); plus the chat template, verbatim.
Verification loads the file back with transformers (`gguf_file=`) and compares weights, tokenizer and
greedy output with the merged model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from privtune.errors import InputError

log = logging.getLogger(__name__)

QTYPES = ("f16", "q8_0")
LAYER_MAP = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
TOP_MAP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}


# ----------------------------------------------------------------------------------------- tensors
def gguf_name(hf_name: str) -> str | None:
    """llama.cpp's name for a transformers llama parameter (None = not stored, e.g. rotary buffers)."""
    if hf_name in TOP_MAP:
        return TOP_MAP[hf_name]
    parts = hf_name.split(".")
    if len(parts) >= 5 and parts[0] == "model" and parts[1] == "layers" and parts[-1] in ("weight", "bias"):
        key = ".".join(parts[3:-1])
        if key in LAYER_MAP:
            return f"blk.{parts[2]}.{LAYER_MAP[key]}.{parts[-1]}"
    return None


def rope_interleave(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Per head, rows [x0..x(d/2-1), y0..y(d/2-1)] -> [x0, y0, x1, y1, …] (llama.cpp's rotary pairing)."""
    rows = w.shape[0]
    head_dim = rows // n_heads
    return (w.reshape(n_heads, 2, head_dim // 2, *w.shape[1:]).swapaxes(1, 2).reshape(rows, *w.shape[1:]))


def check_architecture(config: dict) -> None:
    arch = (config.get("architectures") or ["?"])[0]
    if config.get("model_type") != "llama" or arch != "LlamaForCausalLM":
        raise InputError(f"GGUF export supports llama-family models (LlamaForCausalLM), not {arch}",
                         field="architectures")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise InputError(f"rope scaling {rope.get('rope_type', rope.get('type'))!r} is not supported by the GGUF "
                         "writer yet", field="rope_parameters")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise InputError("llama models with attention/MLP biases are not supported by the GGUF writer yet",
                         field="attention_bias")


def hyperparameters(config: dict) -> dict[str, Any]:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    rope = config.get("rope_parameters") or {}
    return {
        "context_length": int(config.get("max_position_embeddings", 2048)),
        "embedding_length": hidden,
        "block_count": int(config["num_hidden_layers"]),
        "feed_forward_length": int(config["intermediate_size"]),
        "head_count": heads,
        "head_count_kv": int(config.get("num_key_value_heads") or heads),
        "rope_freq_base": float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
        "rms_eps": float(config.get("rms_norm_eps", 1e-6)),
        "head_dim": int(config.get("head_dim") or hidden // heads),
        "vocab_size": int(config["vocab_size"]),
        "tied": bool(config.get("tie_word_embeddings", False)),
    }


def _quantize(arr: np.ndarray, qtype: str):
    """(data, raw_dtype) for the writer: f16/q8_0 for matrices, f32 for vectors and misfit shapes."""
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if arr.ndim < 2:
        return arr.astype(np.float32), None
    if qtype == "q8_0" and arr.shape[-1] % 32 == 0:
        return quantize(arr.astype(np.float32), GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0
    return arr.astype(np.float16), None


# --------------------------------------------------------------------------------------- tokenizer
def detect_pre(tokenizer_json: dict) -> str:
    """llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json (the common cases)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    kinds = [p.get("type") for p in pre.get("pretokenizers", [])] if pre.get("type") == "Sequence" else [pre.get("type")]
    if kinds == ["ByteLevel"] and pre.get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"]:
        return "smollm"
    splits = [p for p in pre.get("pretokenizers", []) if p.get("type") == "Split"]
    if splits:
        regex = str(splits[0].get("pattern", {}).get("Regex", ""))
        if "\\p{N}{1,3}" in regex and "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in regex:
            return "llama-bpe"
        if "\\p{N}" in regex and "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in regex:
            return "qwen2"
    return "default"


def source_gguf(base: dict) -> Path | None:
    """The GGUF the base model was converted from, when there is one."""
    source = str(base.get("source") or "")
    if source.startswith("packaged:"):
        from privtune.models import packaged_gguf

        try:
            return packaged_gguf()
        except InputError:
            return None
    p = Path(source)
    if p.suffix.lower() == ".gguf" and p.is_file():
        return p
    meta = Path(str(base.get("path") or "")) / "privtune_model.json"  # a cache dir converted from a GGUF
    if meta.is_file():
        try:
            origin = Path(json.loads(meta.read_text()).get("source") or "")
        except (OSError, ValueError):
            return None
        return origin if origin.suffix.lower() == ".gguf" and origin.is_file() else None
    return None


def source_pre(base: dict) -> str | None:
    path = source_gguf(base)
    if path is None:
        return None
    from gguf import GGUFReader

    field = GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return field.contents() if field is not None else None


def tokenizer_metadata(tokenizer, vocab_size: int, pre: str | None) -> dict[str, Any]:
    """Tokens, types, merges and special ids of a byte-level BPE tokenizer, in llama.cpp's layout."""
    from gguf import TokenType

    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    model = tj.get("model") or {}
    decoder = (tj.get("decoder") or {}).get("type")
    if model.get("type") != "BPE" or decoder != "ByteLevel":
        raise InputError("GGUF export supports byte-level BPE tokenizers (GPT-2 style); this one is "
                         f"{model.get('type')} with a {decoder} decoder", field="tokenizer")
    by_id: dict[int, str] = {i: t for t, i in model["vocab"].items()}
    types: dict[int, int] = {i: TokenType.NORMAL for i in by_id}
    for added in tj.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = TokenType.CONTROL if added.get("special") else TokenType.USER_DEFINED
    n = max(vocab_size, max(by_id) + 1)
    tokens, token_types = [], []
    for i in range(n):
        if i in by_id:
            tokens.append(by_id[i])
            token_types.append(int(types[i]))
        else:  # the embedding is larger than the vocabulary: fill with unused placeholders
            tokens.append(f"[PAD{i}]")
            token_types.append(int(TokenType.UNUSED))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    def tid(attr: str) -> int | None:
        value = getattr(tokenizer, attr, None)
        return int(value) if value is not None else None

    return {"tokens": tokens, "token_types": token_types, "merges": merges,
            "pre": pre or detect_pre(tj), "bos": tid("bos_token_id"), "eos": tid("eos_token_id"),
            "unk": tid("unk_token_id"), "pad": tid("pad_token_id"),
            "add_bos": bool(getattr(tokenizer, "add_bos_token", False)),
            "chat_template": getattr(tokenizer, "chat_template", None)}


# -------------------------------------------------------------------------------------------- write
def write_gguf(model_dir: Path, path: Path, qtype: str, name: str, pre: str | None = None,
               description: str = "") -> dict[str, Any]:
    """Write `path` from a merged transformers llama directory; returns a summary of what was written."""
    import gguf
    from safetensors import safe_open
    from transformers import AutoTokenizer

    if qtype not in QTYPES:
        raise InputError(f"GGUF type {qtype!r} is not one of {', '.join(QTYPES)}", field="gguf_types")
    config = json.loads((model_dir / "config.json").read_text())
    check_architecture(config)
    hp = hyperparameters(config)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    meta = tokenizer_metadata(tok, hp["vocab_size"], pre)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type("model")
    w.add_name(name)
    if description:
        w.add_description(description)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if qtype == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    if qtype != "f16":
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(hp["context_length"])
    w.add_embedding_length(hp["embedding_length"])
    w.add_block_count(hp["block_count"])
    w.add_feed_forward_length(hp["feed_forward_length"])
    w.add_head_count(hp["head_count"])
    w.add_head_count_kv(hp["head_count_kv"])
    w.add_rope_freq_base(hp["rope_freq_base"])
    w.add_layer_norm_rms_eps(hp["rms_eps"])
    w.add_rope_dimension_count(hp["head_dim"])
    w.add_vocab_size(len(meta["tokens"]))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(meta["pre"])
    w.add_token_list(meta["tokens"])
    w.add_token_types(meta["token_types"])
    w.add_token_merges(meta["merges"])
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("unk", w.add_unk_token_id),
                     ("pad", w.add_pad_token_id)):
        if meta[key] is not None:
            add(meta[key])
    w.add_add_bos_token(meta["add_bos"])
    w.add_add_eos_token(False)
    if meta["chat_template"]:
        w.add_chat_template(meta["chat_template"])

    counts: dict[str, int] = {}
    files = sorted(model_dir.glob("*.safetensors"))
    written = set()
    for f in files:
        with safe_open(f, framework="numpy") as st:
            for hf_name in st.keys():  # noqa: SIM118 - safe_open is not a dict
                target = gguf_name(hf_name)
                if target is None or (target == "output.weight" and hp["tied"]):
                    continue
                arr = st.get_tensor(hf_name).astype(np.float32)
                if hf_name.endswith("self_attn.q_proj.weight"):
                    arr = rope_interleave(arr, hp["head_count"])
                elif hf_name.endswith("self_attn.k_proj.weight"):
                    arr = rope_interleave(arr, hp["head_count_kv"])
                data, raw = _quantize(arr, qtype)
                w.add_tensor(target, data, raw_dtype=raw)
                kind = raw.name if raw is not None else ("F32" if data.dtype == np.float32 else "F16")
                counts[kind] = counts.get(kind, 0) + 1
                written.add(target)
    expected = 2 + (0 if hp["tied"] else 1) + 9 * hp["block_count"]
    if len(written) != expected:
        raise InputError(f"found {len(written)} of the {expected} tensors a llama GGUF needs in {model_dir}",
                         where=str(model_dir))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"file": path.name, "type": qtype, "tensors": counts, "pre_tokenizer": meta["pre"],
            "vocab": len(meta["tokens"]), "merges": len(meta["merges"]), "bytes": path.stat().st_size}


# ------------------------------------------------------------------------------------------- verify
def verify_gguf(path: Path, merged_dir: Path, prompts: list[list[int]], reference: list[list[int]],
                stops: list[int], max_new_tokens: int, qtype: str,
                conversations: list[list[dict]] | None = None) -> dict[str, Any]:
    """Load the GGUF back with transformers and compare weights, tokenizer and greedy output to the merged model."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from privtune.export.merge import agreement, greedy, next_token_agreement

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 local_files_only=True)
    model.eval()
    params = dict(model.named_parameters())
    worst = 0.0
    for f in sorted(merged_dir.glob("*.safetensors")):
        with safe_open(f, framework="pt") as st:
            for name in st.keys():  # noqa: SIM118
                if name not in params:
                    continue
                ref = st.get_tensor(name).float()
                if qtype == "f16":
                    ref = ref.half().float()  # what an exact f16 round trip gives back
                diff = (params[name].detach().float() - ref).abs().max().item()
                scale = ref.abs().max().item() or 1.0
                worst = max(worst, diff / scale)
    got = greedy(model, prompts, max_new_tokens, stops)
    out: dict[str, Any] = {"loader": "transformers gguf_file", "weights_max_rel_error": float(f"{worst:.3g}"),
                           "greedy": agreement(reference, got),
                           "next_token_agreement": next_token_agreement(model, prompts, reference)}
    tok_hf = AutoTokenizer.from_pretrained(merged_dir, local_files_only=True)
    tok_g = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    texts = []
    if conversations:
        texts = [tok_hf.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    texts += ["Card 4111 1111 1111 1111 expires 12/27; call +44 20 7946 0958.", "naïve café — ünïcödé ✓ 😀"]
    same = sum(tok_hf(t, add_special_tokens=False)["input_ids"] == tok_g(t, add_special_tokens=False)["input_ids"]
               for t in texts)
    out["tokenizer"] = {"texts": len(texts), "same_ids": same,
                        "chat_template_equal": (tok_g.chat_template or "") == (tok_hf.chat_template or "")}
    del model
    return out
