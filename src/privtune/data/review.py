"""review.csv: a seeded sample of redacted records for a person to check the redaction.

Half the sample (when there are enough) comes from records where something was redacted, to check
precision, and half from records where nothing was, to look for missed PII. Only redacted text is
written; cells are guarded against spreadsheet formula injection.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from privtune import fsio

COLUMNS = ("id", "split", "category", "redacted_text", "entity_types", "reviewer_verdict", "reviewer_notes")
MAX_CELL_CHARS = 5000  # keeps the sheet usable; the full record is in the split file under the same id
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def sample_size(n: int, minimum: int, fraction: float) -> int:
    return min(n, max(minimum, math.ceil(fraction * n)))


def select_for_review(has_pii: Sequence[bool], minimum: int, fraction: float, seed: int) -> list[int]:
    """Indices to review, sorted; about half with redactions and half without."""
    k = sample_size(len(has_pii), minimum, fraction)
    rng = random.Random(seed)
    with_pii = [i for i, flag in enumerate(has_pii) if flag]
    without = [i for i, flag in enumerate(has_pii) if not flag]
    take_with = min(len(with_pii), max(math.ceil(k / 2), k - len(without)))
    chosen = rng.sample(with_pii, take_with) + rng.sample(without, min(len(without), k - take_with))
    return sorted(chosen)


def render_record(record: dict[str, Any]) -> str:
    """One readable block per record: `role: content` lines, then chosen/rejected, or the raw text."""
    lines = [f"{m['role']}: {m['content']}" for m in record.get("messages", [])]
    lines += [f"{k}: {record[k]}" for k in ("chosen", "rejected") if k in record]
    if "text" in record:
        lines.append(record["text"])
    text = "\n".join(lines)
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + " […]"


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_review_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: safe_cell(row.get(c)) for c in COLUMNS})
    fsio.write_text(path, buf.getvalue())
