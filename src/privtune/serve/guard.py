"""Output guard: every completion passes through privtune's redactor before it leaves the server.

A model tuned on private records can repeat them, so the guard is on by default. Non-streamed answers are
redacted whole. Streamed answers are held back to a sentence or line boundary and redacted a segment at a
time, so a name or an e-mail address is never split across two chunks and leaked half by half; the cost is
that a streamed chunk arrives a sentence at a time while the guard is on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from privtune.config import RedactConfig

RedactFn = Callable[[list[str]], list[tuple[str, dict]]]

# a segment ends after a newline, or after . ! ? followed by whitespace
_BOUNDARY = re.compile(r"\n|[.!?](?=\s)")
MAX_HOLD = 400  # characters held at most before releasing at the last whitespace


def make_redact_fn(cfg: RedactConfig) -> RedactFn:
    """The production redactor (Presidio + spaCy), loaded once."""
    from privtune.data.redact import Redactor

    return Redactor(cfg).redact_texts


def _counts(info: dict) -> dict[str, int]:
    """Entity counts from the redactor's per-text info, whatever shape it reports them in."""
    if not isinstance(info, dict):
        return {}
    for key in ("counts", "entities", "by_type"):
        if isinstance(info.get(key), dict):
            info = info[key]
            break
    else:
        if isinstance(info.get("spans"), list):
            return dict(Counter(str(s.get("entity_type", "PII")) for s in info["spans"] if isinstance(s, dict)))
    return {str(k): int(v) for k, v in info.items() if isinstance(v, int | float) and not isinstance(v, bool) and v}


@dataclass
class OutputGuard:
    redact: RedactFn | None  # None = guard off

    @property
    def enabled(self) -> bool:
        return self.redact is not None

    def apply(self, texts: list[str]) -> list[tuple[str, dict[str, int]]]:
        """(redacted text, {entity_type: count}) per text; blank texts skip the redactor."""
        if self.redact is None:
            return [(t, {}) for t in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out: list[tuple[str, dict[str, int]]] = [(t, {}) for t in texts]
        if todo:
            for i, (text, info) in zip(todo, self.redact([texts[i] for i in todo]), strict=True):
                out[i] = (text, _counts(info))
        return out


def split_ready(buffer: str, final: bool = False) -> tuple[str, str]:
    """(segment safe to redact and release now, text to keep holding)."""
    if final:
        return buffer, ""
    last = None
    for m in _BOUNDARY.finditer(buffer):
        last = m.end()
    if last is not None:
        return buffer[:last], buffer[last:]
    if len(buffer) > MAX_HOLD:
        cut = buffer.rfind(" ", 0, MAX_HOLD)
        cut = cut if cut > 0 else MAX_HOLD
        return buffer[:cut], buffer[cut:]
    return "", buffer


@dataclass
class StreamBuffer:
    """Holds streamed text until a boundary; feed() returns segments ready for the guard."""

    guarded: bool
    pending: str = ""
    redactions: Counter = field(default_factory=Counter)

    def feed(self, text: str, final: bool = False) -> str:
        if not self.guarded:
            return text
        self.pending += text
        ready, self.pending = split_ready(self.pending, final)
        return ready
