"""Read held-out chat records for eval: prompt = every message before the last assistant turn, reference = it.

Input is a prepared dataset directory (DIR/<split>.jsonl) or one JSONL file of normalised chat records
`{"id", "messages": [{"role", "content"}...], "metadata": {...}}`. Every line is checked before any model
is loaded; a bad one is an InputError naming file:line and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privtune.errors import InputError

ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class EvalRecord:
    id: str
    prompt: list[dict[str, str]]
    reference: str
    category: str | None
    line: int


def resolve_data_file(data: str | Path, split: str) -> Path:
    data = Path(data)
    path = data / f"{split}.jsonl" if data.is_dir() else data
    if not path.is_file():
        hint = f" (the '{split}' split of a dataset directory)" if data.is_dir() else ""
        raise InputError(f"evaluation data not found{hint}", where=str(path))
    return path


def parse_record(obj: Any, where: str, line: int, default_id: str) -> EvalRecord:
    """One decoded JSON line → EvalRecord, or InputError naming the offending field."""
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", where=where)
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("expected a non-empty list of {role, content} messages (a prepared chat record)",
                         where=where, field="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InputError(f"role must be one of {sorted(ROLES)}", where=where, field=f"messages[{i}].role")
        if not isinstance(m.get("content"), str):
            raise InputError("content must be a string", where=where, field=f"messages[{i}].content")
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise InputError("no assistant message: nothing to compare the answer with", where=where, field="messages")
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:last]]
    if not any(m["role"] == "user" for m in prompt):
        raise InputError("no user message before the last assistant message", where=where, field="messages")
    rid = obj.get("id", default_id)
    if not isinstance(rid, str | int) or isinstance(rid, bool):
        raise InputError("id must be a string", where=where, field="id")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError("metadata must be an object", where=where, field="metadata")
    category = metadata.get("category")
    return EvalRecord(id=str(rid), prompt=prompt, reference=messages[last]["content"],
                      category=None if category is None else str(category), line=line)


def load_records(path: Path) -> list[EvalRecord]:
    """Every record of `path`, each validated (callers cap to the first N, so the choice is deterministic)."""
    from privtune.registry import crypto

    try:
        blob = crypto.read_bytes_maybe_encrypted(path)  # a dataset encrypted at rest reads like a plaintext one
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", where=str(path)) from None
    records: list[EvalRecord] = []
    for lineno, raw in enumerate(blob.splitlines(), start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 (byte {e.start} of the line)", where=where) from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg}, column {e.colno})", where=where) from None
        records.append(parse_record(obj, where, lineno, default_id=f"{path.stem}:{lineno}"))
    if not records:
        raise InputError("no records to evaluate", where=str(path))
    return records
