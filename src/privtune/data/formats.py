"""Read JSONL / JSON / CSV files and normalise each record to privtune's one shape.

Chat-like records (alpaca, prompt/completion, OpenAI `messages`) become
`{"id", "messages": [{"role", "content"}...], "metadata"}`; preference records keep the prompt as
`messages` plus `chosen`/`rejected` strings; raw text (continued pre-training) is `{"id", "text", "metadata"}`.
The format is detected per record, so one file may mix them.

A file that cannot be read as a whole (missing, empty, not UTF-8, not JSON, broken CSV quoting, unknown
type) raises InputError naming file:line; a single bad record becomes a Rejection and the rest go on.
Fields that belong to no supported format are dropped rather than carried along, so an unexpected column
(say `customer_email`) never slips past redaction inside metadata.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privtune.config import PrepareConfig
from privtune.data.validate import (
    CSV_COLUMNS,
    INVALID_JSON,
    LAST_NOT_ASSISTANT,
    NOT_AN_OBJECT,
    UNKNOWN_FORMAT,
    WRONG_TYPE,
    RecordError,
    Rejection,
    check_id,
    check_record,
    require_messages,
    require_metadata,
    require_str,
)
from privtune.errors import InputError

log = logging.getLogger("privtune.data")

FILE_TYPES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
RECORD_FIELDS = ("id", "metadata", "category", "system", "messages", "instruction", "input", "output", "prompt",
                 "completion", "chosen", "rejected")
_CSV_FIELD_LIMIT = 2**31 - 1  # record size is enforced by max_record_chars, not by the csv module
_JSON_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class Row:
    """One raw record as read from a file: a JSON object, or why it could not be parsed."""

    source: Path
    line: int
    data: dict[str, Any] | None
    error: RecordError | None = None


@dataclass
class Record:
    """A normalised, valid record and where it came from."""

    source: Path
    line: int
    fmt: str  # alpaca | prompt_completion | chat | preference | text
    data: dict[str, Any]
    id_given: bool

    @property
    def where(self) -> str:
        return f"{self.source.name}:{self.line}"


# ------------------------------------------------------------------------------------------ file level
def file_type(path: Path) -> str:
    kind = FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unsupported file type '{path.suffix or '(none)'}': expected one of "
                         f"{', '.join(FILE_TYPES)}", where=str(path))
    return kind


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", where=str(path))
    if not path.is_file():
        raise InputError("not a regular file", where=str(path))
    if path.stat().st_size == 0:
        raise InputError("file is empty", where=f"{path}:1")


def _utf8_error(path: Path, raw: bytes, err: UnicodeDecodeError, base_offset: int = 0, base_line: int = 1):
    line = base_line + raw.count(b"\n", 0, err.start)
    return InputError(f"not valid UTF-8 (byte offset {base_offset + err.start}); convert the file to UTF-8",
                      where=f"{path}:{line}")


def read_text(path: Path) -> str:
    """Whole file as text (BOM stripped); non-UTF-8 names the line and byte offset."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _utf8_error(path, raw, e) from None


def read_rows(path: str | Path) -> Iterator[Row]:
    """Raw rows of one file, lazily; raises InputError for problems that make the whole file unreadable."""
    path = Path(path)
    kind = file_type(path)
    _check_readable(path)
    if kind == "jsonl":
        yield from _jsonl_rows(path)
    elif kind == "json":
        yield from _json_rows(path)
    else:
        yield from _csv_rows(path, delimiter="\t" if kind == "tsv" else ",")


def _jsonl_rows(path: Path) -> Iterator[Row]:
    offset, seen = 0, False
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            start = 3 if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as e:
                raise _utf8_error(path, raw[start:], e, offset + start, lineno) from None
            offset += len(raw)
            if not text.strip():
                continue
            seen = True
            try:
                obj = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                yield Row(path, lineno, None, RecordError(INVALID_JSON, None, f"invalid JSON: {e.msg} (column {e.colno})"))
                continue
            yield _object_row(path, lineno, obj)
    if not seen:
        raise InputError("file is empty (only blank lines)", where=f"{path}:1")


def _object_row(path: Path, line: int, obj: Any) -> Row:
    if isinstance(obj, dict):
        return Row(path, line, obj)
    return Row(path, line, None, RecordError(NOT_AN_OBJECT, None, f"expected a JSON object, got {type(obj).__name__}"))


def _skip_ws(text: str, i: int) -> int:
    return _JSON_WS.match(text, i).end()


def _data_array_start(text: str) -> int:
    """Offset of the `[` of the top-level "data" member (the text is known to be a valid JSON object)."""
    decoder, found = json.JSONDecoder(), -1
    i = _skip_ws(text, _skip_ws(text, 0) + 1)
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past ':'
        if key == "data":
            found = i  # json.loads keeps the last duplicate key, so do we
        _, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return found


def _item_lines(text: str, array_start: int, n: int) -> list[int]:
    """1-based line where each of the array's n items starts (the JSON is known to be valid)."""
    decoder, lines = json.JSONDecoder(), []
    line, last = text.count("\n", 0, array_start) + 1, array_start
    i = _skip_ws(text, array_start + 1)
    for _ in range(n):
        line += text.count("\n", last, i)
        last = i
        lines.append(line)
        _, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return lines


def _json_rows(path: Path) -> Iterator[Row]:
    text = read_text(path)
    if not text.strip():
        raise InputError("file is empty (only whitespace)", where=f"{path}:1")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (one object per line? name the file .jsonl)" if e.msg == "Extra data" else ""
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno}){hint}", where=f"{path}:{e.lineno}") from None
    if isinstance(doc, list):
        items, start = doc, _skip_ws(text, 0)
    elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
        items, start = doc["data"], _data_array_start(text)
    else:
        raise InputError('expected a list of records or an object {"data": [...]}', where=f"{path}:1")
    if not items:
        raise InputError("file holds no records", where=f"{path}:1")
    for obj, line in zip(items, _item_lines(text, start, len(items)), strict=True):
        yield _object_row(path, line, obj)


def _csv_rows(path: Path, delimiter: str) -> Iterator[Row]:
    text = read_text(path)
    if not text.strip():
        raise InputError("file is empty (only whitespace)", where=f"{path}:1")
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    done = 0
    while True:
        start = done + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise InputError(f"broken CSV quoting: {e} (a quoted field opened on or after this line is never "
                             "closed properly)", where=f"{path}:{start}") from None
        done = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = _csv_header(path, start, cells)
            continue
        if len(cells) > len(header):
            yield Row(path, start, None, RecordError(
                CSV_COLUMNS, None, f"row has {len(cells)} columns but the header has {len(header)}"))
            continue
        try:
            yield Row(path, start, _csv_object(header, cells))
        except RecordError as e:
            yield Row(path, start, None, e)
    if header is None:
        raise InputError("file is empty", where=f"{path}:1")


def _csv_header(path: Path, line: int, cells: list[str]) -> list[str]:
    header = [c.strip() for c in cells]
    if any(not h for h in header):
        raise InputError(f"CSV header has an empty column name (column {header.index('') + 1})", where=f"{path}:{line}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"CSV header repeats column(s) {', '.join(dupes)}", where=f"{path}:{line}")
    known = set(RECORD_FIELDS) | {"text"}
    if not any(h in known or h.startswith("metadata.") for h in header):
        raise InputError(f"CSV header names no known column ({', '.join(h[:30] for h in header[:8])}); expected "
                         "instruction/output, prompt/completion, prompt/chosen/rejected, messages or text",
                         where=f"{path}:{line}")
    return header


def _csv_object(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A CSV row as a JSON-like object: `metadata.X` columns nest, `messages`/`metadata` cells hold JSON."""
    data: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for name, value in zip(header, cells, strict=False):
        if value == "":
            continue
        if name.startswith("metadata."):
            meta[name.removeprefix("metadata.")] = value
        elif name in ("messages", "metadata"):
            try:
                data[name] = json.loads(value)
            except json.JSONDecodeError as e:
                raise RecordError(INVALID_JSON, name, f"column '{name}' must hold JSON: {e.msg}") from None
        else:
            data[name] = value
    if meta:
        base = data.get("metadata")
        data["metadata"] = {**base, **meta} if isinstance(base, dict) else meta
    return data


# ---------------------------------------------------------------------------------------- record level
def detect_format(data: dict[str, Any], text_field: str = "text") -> str:
    if "messages" in data:
        return "chat"
    if "chosen" in data or "rejected" in data:
        return "preference"
    if "instruction" in data:
        return "alpaca"
    if "prompt" in data or "completion" in data:
        return "prompt_completion"
    if text_field in data:
        return "text"
    found = ", ".join(k[:30] for k in sorted(data)[:8]) or "none"
    raise RecordError(UNKNOWN_FORMAT, None, f"no known fields (found: {found}); expected messages, "
                      f"instruction/output, prompt/completion, prompt/chosen/rejected or {text_field}")


def _response(data: dict[str, Any], key: str) -> str:
    """A preference answer: a string, or a message list whose last message is the assistant's."""
    value = data.get(key)
    if isinstance(value, list):
        msgs = require_messages(value, key)
        if msgs[-1]["role"] != "assistant":
            raise RecordError(LAST_NOT_ASSISTANT, key, f"the last message of '{key}' must be from the assistant")
        return msgs[-1]["content"]
    return require_str(data, key)


def normalise(data: dict[str, Any], fmt: str, source_line: str, text_field: str = "text") -> dict[str, Any]:
    """One record in privtune's shape ("id" is None when the input gave none); raises RecordError."""
    meta = require_metadata(data.get("metadata"))
    category = data.get("category")
    if "category" not in meta and isinstance(category, str | int | float | bool):
        meta["category"] = category
    meta["source_line"] = source_line
    rid = check_id(data.get("id"))
    system = require_str(data, "system", optional=True)
    head = [{"role": "system", "content": system}] if system is not None else []
    if fmt == "text":
        return {"id": rid, "text": require_str(data, text_field), "metadata": meta}
    if fmt == "chat":
        messages = require_messages(data.get("messages"), "messages")
        if head and messages[0]["role"] != "system":
            messages = head + messages
        return {"id": rid, "messages": messages, "metadata": meta}
    if fmt == "preference":
        prompt = data.get("prompt")
        messages = require_messages(prompt, "prompt") if isinstance(prompt, list) else [
            {"role": "user", "content": require_str(data, "prompt")}]
        if head and messages[0]["role"] != "system":
            messages = head + messages
        return {"id": rid, "messages": messages, "chosen": _response(data, "chosen"),
                "rejected": _response(data, "rejected"), "metadata": meta}
    if fmt == "alpaca":
        instruction, output = require_str(data, "instruction"), require_str(data, "output")
        extra = require_str(data, "input", optional=True)
        user = instruction + (f"\n\n{extra}" if extra and extra.strip() else "")
    elif fmt == "prompt_completion":
        user, output = require_str(data, "prompt"), require_str(data, "completion")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    messages = head + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return {"id": rid, "messages": messages, "metadata": meta}


def stable_id(record: dict[str, Any]) -> str:
    """First 16 hex of sha256 over the canonical record (content + metadata, not its id or file position)."""
    meta = {k: v for k, v in record.get("metadata", {}).items() if k != "source_line"}
    canonical = {k: v for k, v in record.items() if k not in ("id", "metadata")} | {"metadata": meta}
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_records(path: str | Path, cfg: PrepareConfig | None = None) -> Iterator[Record | Rejection]:
    """Normalised, validated records of one file, each a Record or a Rejection, in file order."""
    path = Path(path)
    cfg = cfg or PrepareConfig()
    known = set(RECORD_FIELDS) | {cfg.text_field}
    ignored: set[str] = set()
    for row in read_rows(path):
        if row.data is None:
            err = row.error or RecordError(WRONG_TYPE, None, "unreadable record")
            yield Rejection(path, row.line, err.reason, err.field, err.message)
            continue
        try:
            fmt = detect_format(row.data, cfg.text_field)
            record = normalise(row.data, fmt, f"{path.name}:{row.line}", cfg.text_field)
            check_record(record, cfg.max_record_chars)
        except RecordError as e:
            yield Rejection(path, row.line, e.reason, e.field, e.message)
            continue
        ignored.update(k for k in row.data if k not in known)
        id_given = record["id"] is not None
        if not id_given:
            record["id"] = stable_id(record)
        yield Record(path, row.line, fmt, record, id_given)
    if ignored:
        log.warning("%s: ignored field(s) that belong to no supported format: %s", path.name,
                    ", ".join(sorted(k[:30] for k in ignored)[:10]))
