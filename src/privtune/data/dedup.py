"""Duplicate removal: exact (normalised content hash) and near-duplicate (MinHash LSH, datasketch).

Duplicates are found on the record's full content (every message with its role, chosen/rejected, text),
normalised so that case, Unicode compatibility forms and whitespace do not hide a copy. The first copy wins.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


# ------------------------------------------------------------------------------------------ near duplicates
def shingles(text: str, n: int) -> set[bytes]:
    """Word n-grams of the normalised text (the whole text when it has fewer than n words)."""
    words = normalise_text(text).split()
    if len(words) <= n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i:i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def content_text(record: dict[str, Any]) -> str:
    parts = [m["content"] for m in record.get("messages", [])]
    parts += [record[k] for k in ("chosen", "rejected", "text") if k in record]
    return "\n".join(parts)


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positives + negatives at `threshold` (datasketch's own optimiser)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


class NearDupIndex:
    """MinHash (datasketch) signatures banded into LSH buckets, kept as compact arrays so a million records fit
    in memory: per record only `bands` 64-bit bucket keys stay in RAM; full signatures go to a scratch file and
    are read back only to verify a candidate pair. `clusters()` runs once, after every record was added."""

    def __init__(self, threshold: float, ngram: int, num_perm: int, scratch: Path, seed: int = 1):
        self.threshold, self.ngram, self.num_perm, self.seed = threshold, ngram, num_perm, seed
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self._sig_path = scratch
        self._sig_fh = open(scratch, "wb")  # noqa: SIM115 - closed in clusters()
        self._keys: list[Any] = []
        self.n = 0

    def add_many(self, texts: Sequence[str]) -> None:
        """Signatures for a batch, vectorised over all its shingles (datasketch's permutations and hashing
        scheme, crc32 shingle hashes); per-record `MinHash.update` would take minutes per million records."""
        import zlib

        import numpy as np
        from datasketch import MinHash

        if not texts:
            return
        if not hasattr(self, "_perm"):
            self._perm = MinHash(num_perm=self.num_perm, seed=self.seed).permutations
        a, b = self._perm
        prime, max_hash = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)
        for start in range(0, len(texts), 1024):
            part = [shingles(t, self.ngram) for t in texts[start:start + 1024]]
            sizes = np.fromiter((len(p) for p in part), dtype=np.int64, count=len(part))
            hv = np.fromiter((zlib.crc32(s) for p in part for s in p), dtype=np.uint64, count=int(sizes.sum()))
            phv = np.bitwise_and((hv[:, None] * a + b) % prime, max_hash)
            offsets = np.r_[0, np.cumsum(sizes)[:-1]]
            mat = np.minimum.reduceat(phv, offsets, axis=0).astype(np.uint32)
            mat.tofile(self._sig_fh)
            banded = mat[:, :self.bands * self.rows].reshape(len(part), self.bands, self.rows).astype(np.uint64)
            mult = np.uint64(1000003) ** np.arange(self.rows, dtype=np.uint64)
            self._keys.append((banded * mult).sum(axis=2, dtype=np.uint64))
            self.n += len(part)

    def clusters(self) -> list[list[int]]:
        """Groups (size >= 2, sorted indices) of records whose estimated Jaccard similarity >= threshold.

        Signatures are read back row by row with pread, not memory-mapped: every page of a mapping a candidate
        check touches (and the kernel's fault-around neighbours) counts as this process's RSS until it is
        unmapped, which at 1M records was the whole 488 MiB file. Band columns are built one at a time for the
        same reason (a full vstack would double the bucket keys)."""
        import numpy as np

        self._sig_fh.close()
        if self.n < 2:
            return []
        row_bytes = self.num_perm * 4
        parent = np.arange(self.n, dtype=np.int64)

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = int(parent[x])
            return x

        checked: set[int] = set()  # head * n + member: one int per verified pair, not a tuple of two
        fd = os.open(self._sig_path, os.O_RDONLY)
        try:
            def sig(i: int) -> np.ndarray:
                return np.frombuffer(os.pread(fd, row_bytes, i * row_bytes), dtype=np.uint32)

            for b in range(self.bands):
                col = np.concatenate([k[:, b] for k in self._keys])
                order = np.argsort(col, kind="stable")
                sorted_keys = col[order]
                del col
                starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
                ends = np.r_[starts[1:], len(order)]
                shared = ends - starts > 1  # buckets with a candidate pair
                for s, e in zip(starts[shared], ends[shared], strict=True):
                    members = np.sort(order[s:e])
                    head = int(members[0])
                    head_sig = None
                    for m in members[1:]:
                        m = int(m)
                        pair = head * self.n + m
                        if pair in checked or find(head) == find(m):
                            continue
                        checked.add(pair)
                        head_sig = sig(head) if head_sig is None else head_sig
                        if float(np.mean(head_sig == sig(m))) >= self.threshold:
                            a, c = find(head), find(m)
                            parent[max(a, c)] = min(a, c)
        finally:
            os.close(fd)
        self._keys = []
        groups: dict[int, list[int]] = {}
        for i in range(self.n):
            root = find(i)
            if root != i:
                groups.setdefault(root, [root]).append(i)
        return sorted(sorted(g) for g in groups.values())
