"""Duplicate removal. Exact now; near-duplicate (MinHash) detection plugs in beside `exact_dedup`.

Duplicates are found on the record's full content (every message with its role, chosen/rejected, text),
normalised so that case, Unicode compatibility forms and whitespace do not hide a copy. The first copy wins.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_key(record: dict[str, Any]) -> str:
    """sha256 of the normalised content; roles and field names are part of it, ids and metadata are not."""
    parts = [f"{m['role']}\x1f{normalise_text(m['content'])}" for m in record.get("messages", [])]
    parts += [f"{k}\x1f{normalise_text(record[k])}" for k in ("chosen", "rejected", "text") if k in record]
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()


@dataclass
class DedupResult(Generic[T]):
    kept: list[T]
    duplicates: list[tuple[T, T]] = field(default_factory=list)  # (dropped copy, the kept original)


def exact_dedup(items: Sequence[T], key: Callable[[T], str]) -> DedupResult[T]:
    """Keep the first item of each key, in input order."""
    first: dict[str, T] = {}
    result: DedupResult[T] = DedupResult(kept=[])
    for item in items:
        k = key(item)
        if k in first:
            result.duplicates.append((item, first[k]))
        else:
            first[k] = item
            result.kept.append(item)
    return result
