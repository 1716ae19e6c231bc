"""Per-record rules: what makes a record trainable, and how a bad one is reported.

A rejection names the place (file:line), the field and a reason code, never the record's text, so
rejected.jsonl and logs can be shared without leaking what was in the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")

# reason codes (stable: the manifest counts them and users grep for them)
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_FORMAT = "unknown_format"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
EMPTY_FIELD = "empty_field"
INVALID_ROLE = "invalid_role"
SYSTEM_NOT_FIRST = "system_not_first"
LAST_NOT_ASSISTANT = "last_not_assistant"
LAST_NOT_USER = "last_not_user"
NO_USER_MESSAGE = "no_user_message"
CHOSEN_EQUALS_REJECTED = "chosen_equals_rejected"
TOO_LONG = "too_long"
CSV_COLUMNS = "csv_columns"
DUPLICATE_ID = "duplicate_id"


class RecordError(ValueError):
    """One record is unusable; carries the field and a reason code, never the record's content."""

    def __init__(self, reason: str, field: str | None, message: str):
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rejection:
    source: Path
    line: int
    reason: str
    field: str | None
    message: str

    @property
    def where(self) -> str:
        """basename:line, as written to rejected.jsonl and metadata.source_line."""
        return f"{self.source.name}:{self.line}"

    def row(self) -> dict[str, Any]:
        return {"where": self.where, "field": self.field, "reason": self.reason, "message": self.message}

    def to_input_error(self):
        from privtune.errors import InputError

        return InputError(f"rejected record ({self.reason}): {self.message}", where=f"{self.source}:{self.line}",
                          field=self.field)


# ------------------------------------------------------------------------------------- raw field checks
def require_str(data: dict[str, Any], field: str, *, optional: bool = False) -> str | None:
    """The field as a string: missing/None/"" is allowed only when optional; numbers are not text."""
    value = data.get(field)
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise RecordError(MISSING_FIELD, field, f"required field '{field}' is missing")
    if not isinstance(value, str):
        raise RecordError(WRONG_TYPE, field, f"'{field}' must be a string, got {type(value).__name__}")
    return value


def require_messages(value: Any, field: str) -> list[dict[str, str]]:
    """A list of {"role", "content"} objects with string values (extra keys such as `name` are dropped)."""
    if value is None:
        raise RecordError(MISSING_FIELD, field, f"required field '{field}' is missing")
    if not isinstance(value, list):
        raise RecordError(WRONG_TYPE, field, f"'{field}' must be a list of messages, got {type(value).__name__}")
    if not value:
        raise RecordError(EMPTY_FIELD, field, f"'{field}' is an empty list")
    out = []
    for i, msg in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict):
            raise RecordError(WRONG_TYPE, where, f"'{where}' must be an object, got {type(msg).__name__}")
        for key in ("role", "content"):
            if msg.get(key) is None:
                raise RecordError(MISSING_FIELD, f"{where}.{key}", f"'{where}.{key}' is missing")
            if not isinstance(msg[key], str):
                raise RecordError(WRONG_TYPE, f"{where}.{key}",
                                  f"'{where}.{key}' must be a string, got {type(msg[key]).__name__}")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def require_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(WRONG_TYPE, "metadata", f"'metadata' must be an object, got {type(value).__name__}")
    return dict(value)


def check_id(value: Any) -> str | None:
    """A given id must be a non-empty string or an integer; None means 'derive one from the content'."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(WRONG_TYPE, "id", f"'id' must be a string or an integer, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RecordError(EMPTY_FIELD, "id", "'id' is empty")
    return text


# -------------------------------------------------------------------------------- normalised record checks
def _check_messages(messages: list[dict[str, str]], field: str, last_role: str) -> None:
    for i, msg in enumerate(messages):
        if msg["role"] not in ROLES:
            raise RecordError(INVALID_ROLE, f"{field}[{i}].role",
                              f"role must be one of {', '.join(ROLES)}, got '{msg['role'][:20]}'")
        if msg["role"] == "system" and i != 0:
            raise RecordError(SYSTEM_NOT_FIRST, f"{field}[{i}].role", "a system message may only come first")
        if not msg["content"].strip():
            raise RecordError(EMPTY_FIELD, f"{field}[{i}].content", "message content is empty")
    if messages[-1]["role"] != last_role:
        reason = LAST_NOT_ASSISTANT if last_role == "assistant" else LAST_NOT_USER
        raise RecordError(reason, f"{field}[{len(messages) - 1}].role",
                          f"the last message must be from the {last_role}, got '{messages[-1]['role']}'")
    if last_role == "assistant" and not any(m["role"] == "user" for m in messages):
        raise RecordError(NO_USER_MESSAGE, field, "no user message before the assistant's answer")


def text_fields(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, text) for every text a normalised record carries: what redaction and size checks see."""
    out = [(f"messages[{i}].content", m["content"]) for i, m in enumerate(record.get("messages", []))]
    out += [(key, record[key]) for key in ("chosen", "rejected", "text") if key in record]
    return out


def check_record(record: dict[str, Any], max_chars: int) -> None:
    """Raise RecordError if a normalised record cannot be trained on."""
    if "text" in record:
        if not record["text"].strip():
            raise RecordError(EMPTY_FIELD, "text", "'text' is empty")
    elif "chosen" in record:
        _check_messages(record["messages"], "prompt", last_role="user")
        for key in ("chosen", "rejected"):
            if not record[key].strip():
                raise RecordError(EMPTY_FIELD, key, f"'{key}' is empty")
        if record["chosen"].strip() == record["rejected"].strip():
            raise RecordError(CHOSEN_EQUALS_REJECTED, "rejected", "'chosen' and 'rejected' are identical")
    else:
        _check_messages(record["messages"], "messages", last_role="assistant")
    fields = text_fields(record)
    total = sum(len(text) for _, text in fields)
    if total > max_chars:
        biggest = max(fields, key=lambda f: len(f[1]))[0]
        raise RecordError(TOO_LONG, biggest, f"record has {total:,} characters, more than max_record_chars={max_chars:,}")
