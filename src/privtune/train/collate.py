"""Chat records → token ids + labels (loss on assistant turns only) → length-grouped, dynamically padded batches.

The base model's own chat template renders each record. Which characters the model must learn to generate is
found by rendering the conversation prefix by prefix: for assistant turn i, the text the template writes after
`messages[:i]` + generation prompt and up to the end of `messages[:i+1]` is that turn (its content and its
end-of-turn token; trailing whitespace after the end-of-turn token is not supervised). Character spans are mapped
to tokens with the fast tokenizer's offsets, so no template-specific token ids are hard-coded. If a template does
not render prefixes consistently (e.g. it rewrites earlier turns), the content is located in the full text
instead and the control token right after it is supervised with it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

IGNORE = -100


@dataclass(frozen=True)
class Example:
    id: str
    input_ids: list[int]
    labels: list[int]  # aligned with input_ids (HF convention); the loss shifts by one
    truncated: bool

    @property
    def n_supervised(self) -> int:
        """Tokens that are predicted (a label at position 0 has no preceding token and is never predicted)."""
        return sum(1 for y in self.labels[1:] if y != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeStats:
    records: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0  # nothing left to learn after truncation
    tokens: int = 0
    supervised_tokens: int = 0
    max_len: int = 0
    template_fallback: int = 0  # records whose template did not render prefixes consistently
    control_token_records: int = 0  # content that contains a control token string such as <|im_end|>
    dropped_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "dropped_ids"}
        d["dropped_ids"] = self.dropped_ids[:20]
        return d


def _render(tokenizer, messages: Sequence[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def control_tokens(tokenizer) -> list[str]:
    """Added/special token strings, longest first (so `<|im_end|>` wins over a shorter prefix)."""
    return sorted((t for t in tokenizer.get_added_vocab() if t.strip()), key=len, reverse=True)


def supervised_char_spans(tokenizer, messages: Sequence[dict], controls: Sequence[str] = ()) -> tuple[str, list, bool]:
    """Render `messages` and return (text, [(start, end) of each assistant turn], prefixes_consistent)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    messages = list(messages[: last + 1])  # turns after the last answer teach nothing
    text = _render(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    consistent = True
    cursor = 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], True) if i else None
        upto = _render(tokenizer, messages[: i + 1], False)
        if prefix is not None and text.startswith(prefix) and text.startswith(upto) and len(upto) >= len(prefix):
            start, end = len(prefix), len(upto.rstrip())
            if end > start:
                spans.append((start, end))
            cursor = len(upto)
            continue
        consistent = False
        span = _locate_turn(text, m["content"], cursor, controls)
        if span is not None:
            spans.append(span)
            cursor = span[1]
    return text, spans, consistent


def _locate_turn(text: str, content: str, cursor: int, controls: Sequence[str]) -> tuple[int, int] | None:
    """Fallback: the content's next occurrence plus the control token that closes it, if one follows."""
    stripped = content.strip()
    pos = text.find(stripped, cursor) if stripped else -1
    if pos < 0:
        return None
    end = pos + len(stripped)
    rest = text[end:].lstrip(" \t")
    for tok in controls:
        if rest.startswith(tok):
            end = text.index(tok, end) + len(tok)
            break
    return pos, end


def spans_to_labels(input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
                    ) -> list[int]:
    """Label every token whose characters overlap a supervised span; -100 elsewhere."""
    labels = [IGNORE] * len(input_ids)
    j = 0
    for t, (s, e) in enumerate(offsets):
        while j < len(spans) and spans[j][1] <= s:
            j += 1
        if j == len(spans):
            break
        a, b = spans[j]
        if s < b and max(e, s + 1) > a:
            labels[t] = input_ids[t]
    return labels


def encode_chat(tokenizer, record_id: str, messages: Sequence[dict], max_seq_len: int,
                controls: Sequence[str] = ()) -> tuple[Example, bool]:
    """One record → Example (truncated on the right to max_seq_len) and whether the template fallback was used."""
    text, spans, consistent = supervised_char_spans(tokenizer, messages, controls)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = spans_to_labels(ids, enc["offset_mapping"], spans)
    truncated = len(ids) > max_seq_len
    return Example(record_id, ids[:max_seq_len], labels[:max_seq_len], truncated), not consistent


def encode_records(tokenizer, records, max_seq_len: int) -> tuple[list[Example], EncodeStats]:
    """Encode ChatRecords; records left with no supervised token (after truncation) are dropped and counted.

    A record the chat template refuses (e.g. a system turn for a model without one) is an InputError at its line.
    """
    from jinja2 import TemplateError

    from privtune.errors import InputError

    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("a fast tokenizer (tokenizer.json) is needed to map the chat template to tokens")
    controls = control_tokens(tokenizer)
    stats = EncodeStats()
    out = []
    for rec in records:
        stats.records += 1
        if controls and any(c in m["content"] for m in rec.messages for c in controls):
            stats.control_token_records += 1
        try:
            ex, fallback = encode_chat(tokenizer, rec.id, rec.messages, max_seq_len, controls)
        except TemplateError as e:
            raise InputError(f"the base model's chat template rejects this record: {e}", where=rec.where,
                             field="messages") from None
        stats.template_fallback += fallback
        stats.truncated += ex.truncated
        if ex.n_supervised == 0:
            stats.dropped += 1
            stats.dropped_ids.append(rec.id)
            continue
        stats.kept += 1
        stats.tokens += len(ex)
        stats.supervised_tokens += ex.n_supervised
        stats.max_len = max(stats.max_len, len(ex))
        out.append(ex)
    return out, stats


# --------------------------------------------------------------------------------------------- batching
def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True,
                           mega: int = 64) -> list[list[int]]:
    """Seeded batches of indices covering every example once; similar lengths share a batch.

    Indices are shuffled, cut into chunks of `mega` batches, sorted by length inside each chunk and cut into
    batches, then the batches are shuffled: little padding, yet a different mix every epoch.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    chunk = batch_size * mega
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c: c + chunk], key=lambda i: -lengths[i])
        batches += [part[i: i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Deterministic batches for evaluation: longest first, minimal padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def collate(examples: Sequence[Example], pad_id: int):
    """Right-pad to the longest example of the batch (not to max_seq_len)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
