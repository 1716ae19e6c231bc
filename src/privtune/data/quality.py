"""Quality gates: what makes fine-tuning fail even when every record is well-formed.

Per record (pure functions, checked chunk by chunk while streaming): token length with the base model's
tokenizer (too short to teach anything, or longer than training will keep), empty or whitespace-only output,
an output that copies the prompt, and non-text noise (base64 blobs, binary debris, markup soup). Across the
dataset: the same normalised input with different outputs (label inconsistency): every record of such a group
is rejected, because the model cannot learn both answers and a reviewer must decide which one is right.

Each gate has a stable reason code (counted in manifest.counts.rejected_by_reason).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from privtune.data.dedup import normalise_text

TOO_FEW_TOKENS = "too_few_tokens"
TOO_MANY_TOKENS = "too_many_tokens"
EMPTY_OUTPUT = "empty_output"
PROMPT_COPY = "prompt_copy"
NOISE = "non_text_noise"
LABEL_CONFLICT = "label_conflict"
PII_DROPPED = "pii_dropped"

_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{80,}")  # base64 / hex / minified blobs
_TEXTY = re.compile(r"[\w\s.,;:!?'\"()\[\]-]")


def record_text(record: dict[str, Any]) -> str:
    """Everything the model will read, in order (roles omitted): what the token length is measured on."""
    parts = [m["content"] for m in record.get("messages", [])]
    parts += [record[k] for k in ("chosen", "text") if k in record]
    return "\n".join(parts)


def output_of(record: dict[str, Any]) -> str | None:
    """The training target: the last assistant message, `chosen`, or None for raw text."""
    if "chosen" in record:
        return record["chosen"]
    msgs = record.get("messages") or []
    return msgs[-1]["content"] if msgs and msgs[-1]["role"] == "assistant" else None


def input_key(record: dict[str, Any]) -> bytes | None:
    """16-byte hash of the normalised input (every message but the target); None for raw text. Bytes, not hex:
    prepare keeps one per record, and at a million records a 49-byte object instead of an 81-byte str counts."""
    msgs = record.get("messages") or []
    if not msgs:
        return None
    head = msgs if "chosen" in record else msgs[:-1]
    blob = "\x1e".join(f"{m['role']}\x1f{normalise_text(m['content'])}" for m in head)
    return hashlib.sha256(blob.encode("utf-8")).digest()[:16]


def output_key(record: dict[str, Any]) -> bytes:
    return hashlib.sha256(normalise_text(output_of(record) or "").encode("utf-8")).digest()[:16]


def noise_ratio(text: str) -> float:
    """Share of characters that are not ordinary text (letters, digits, spaces, common punctuation)."""
    if not text:
        return 0.0
    texty = len(_TEXTY.findall(text))
    blob = sum(len(m.group()) for m in _LONG_TOKEN.finditer(text))
    return min(1.0, (len(text) - texty + blob) / len(text))


@dataclass(frozen=True)
class Verdict:
    reason: str
    message: str
    field: str | None = None


def check_quality(record: dict[str, Any], n_tokens: int | None, cfg: Any) -> Verdict | None:
    """The first gate this record fails, or None. `cfg` is a QualityConfig."""
    out = output_of(record)
    if out is not None and not out.strip():
        return Verdict(EMPTY_OUTPUT, "the output is empty or whitespace", "output")
    if cfg.copies and out is not None:
        users = [m["content"] for m in record.get("messages", []) if m["role"] == "user"]
        o = normalise_text(out)
        for u in users[-1:]:
            nu = normalise_text(u)
            if o and (o == nu or (len(o) >= cfg.copy_min_chars and o in nu)):
                return Verdict(PROMPT_COPY, "the output repeats the prompt", "output")
    if cfg.noise:
        text = record_text(record)
        ratio = noise_ratio(text)
        if len(text) >= 20 and ratio > cfg.max_noise_ratio:
            return Verdict(NOISE, f"{ratio:.0%} of the characters are not text (quality.max_noise_ratio="
                           f"{cfg.max_noise_ratio:g})")
    if n_tokens is not None:
        if n_tokens < cfg.min_tokens:
            return Verdict(TOO_FEW_TOKENS, f"{n_tokens} tokens, fewer than quality.min_tokens={cfg.min_tokens}")
        if cfg.max_tokens is not None and n_tokens > cfg.max_tokens:
            return Verdict(TOO_MANY_TOKENS, f"{n_tokens} tokens, more than quality.max_tokens={cfg.max_tokens}")
    return None


@lru_cache(maxsize=2)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)


def token_counter(base: str | None):
    """A function texts -> token counts with the base model's tokenizer (packaged model when base is None)."""
    from privtune.models import resolve_base

    resolved = resolve_base(base)
    tok = _tokenizer(str(resolved.path))

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]

    count.base = {"name": resolved.name, "path": str(resolved.path)}  # type: ignore[attr-defined]
    return count


class ConflictTracker:
    """Same normalised input, different outputs: remembers one output hash per input (constant per record)."""

    CONFLICT = b""

    def __init__(self) -> None:
        self._seen: dict[bytes, bytes] = {}

    def add(self, record: dict[str, Any]) -> bytes | None:
        """Remember the record; returns its input key (for a new input the very object the dict holds, so a
        caller keeping it pays for a pointer only)."""
        key = input_key(record)
        if key is None or output_of(record) is None:
            return key
        out = output_key(record)
        prev = self._seen.setdefault(key, out)
        if prev != out:
            self._seen[key] = self.CONFLICT
        return key

    def conflicting(self, record: dict[str, Any]) -> bool:
        key = input_key(record)
        return key is not None and self.conflicting_key(key)

    def conflicting_key(self, key: bytes) -> bool:
        return self._seen.get(key) == self.CONFLICT

    @property
    def n_conflicting_inputs(self) -> int:
        return sum(1 for v in self._seen.values() if v == self.CONFLICT)
