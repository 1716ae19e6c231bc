"""Read the chat records `privtune prepare` wrote, failing on the first bad line with file:line and field.

Training reads only the prepared artefacts, so a record that breaks the data contract is a bad input (exit 2),
never something to skip silently: the dataset hash in run.json must describe exactly what was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from privtune.errors import InputError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatRecord:
    id: str
    messages: tuple[dict[str, str], ...]
    where: str  # file:line, for messages that must not carry the record's text


def _check_messages(messages: object, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(messages, list) or not messages:
        raise InputError("must be a non-empty list of {role, content}", where=where, field="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InputError("must be an object {role, content}", where=where, field=f"messages[{i}]")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise InputError(f"must be one of {', '.join(ROLES)}", where=where, field=f"messages[{i}].role")
        if not isinstance(content, str):
            raise InputError("must be a string", where=where, field=f"messages[{i}].content")
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        raise InputError("has no assistant message to learn from", where=where, field="messages")
    return tuple(out)


def parse_record(line: str, where: str) -> ChatRecord:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", where=where) from None
    if not isinstance(obj, dict):
        raise InputError("a record must be a JSON object", where=where)
    rid = obj.get("id")
    if not isinstance(rid, str | int) or isinstance(rid, bool) or str(rid) == "":
        raise InputError("must be a non-empty string", where=where, field="id")
    return ChatRecord(id=str(rid), messages=_check_messages(obj.get("messages"), where), where=where)


def read_records(path: Path) -> list[ChatRecord]:
    """Every record of a prepared JSONL file (plaintext or encrypted at rest); blank lines are allowed."""
    from privtune.registry import crypto

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found (run `privtune prepare` to create the dataset)", where=str(path))
    blob = crypto.read_bytes_maybe_encrypted(path)
    records = []
    for lineno, raw in enumerate(blob.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", where=f"{path}:{lineno}") from None
        if line.strip():
            records.append(parse_record(line, f"{path}:{lineno}"))
    if not records:
        raise InputError("no records", where=str(path))
    return records
