"""`privtune train --method cpt`: continued pre-training on raw domain text, as a LoRA adapter.

Input is either a prepared dataset (`privtune prepare` turns raw-text records into `{"id", "text", "metadata"}`;
chat records are rendered with the chat template) or a directory of .txt/.md files taken as they are. Documents
are tokenised, joined with EOS between them and cut into fixed blocks of `cpt.block_size` tokens; every token
is learnt. Blocks may span a document boundary (the EOS marks it), as in GPT-style pre-training: no padding,
no tokens thrown away. The SFT loop (sft.py) does the rest: same optimizer, schedule, best adapter, run.json.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from pathlib import Path

from privtune.config import TrainConfig
from privtune.errors import InputError
from privtune.train.collate import EncodeStats, Example

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")


def pack_blocks(docs: Sequence[Sequence[int]], eos_id: int, block_size: int) -> list[list[int]]:
    """Concatenate token lists with EOS after each and cut into blocks; the last one may be shorter (≥ 2 tokens)."""
    stream: list[int] = []
    for d in docs:
        stream.extend(d)
        stream.append(eos_id)
    blocks = [stream[i: i + block_size] for i in range(0, len(stream), block_size)]
    return [b for b in blocks if len(b) >= 2]


def split_blocks(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded (train, val) block indices; at least one block each when there are two or more."""
    if n < 2:
        raise InputError(f"the text gives {n} block(s); continued pre-training needs at least 2 (more text or a "
                         "smaller cpt.block_size)", field="cpt.block_size")
    k = min(n - 1, max(1, math.ceil(val_fraction * n)))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[k:]), sorted(order[:k])


# ------------------------------------------------------------------------------------------ reading
def text_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix.lower() in TEXT_SUFFIXES else []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def read_text_files(files: Sequence[Path]) -> list[str]:
    docs = []
    for f in files:
        try:
            text = f.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise InputError(f"not valid UTF-8 (byte {e.start}); convert the file to UTF-8", where=str(f)) from None
        if text.strip():
            docs.append(text)
    if not docs:
        raise InputError("no text in the .txt/.md files", where=str(files[0].parent if files else "?"))
    return docs


def record_text(obj: object, where: str, tokenizer) -> str:
    """A prepared record's text: `text`, or a chat record rendered with the model's template (or joined)."""
    if not isinstance(obj, dict):
        raise InputError("a record must be a JSON object", where=where)
    if isinstance(obj.get("text"), str):
        return obj["text"]
    messages = obj.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                       for m in messages):
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False)
        return "\n\n".join(m["content"] for m in messages)
    raise InputError("needs a string 'text' (raw text) or 'messages' (chat)", where=where, field="text")


def read_prepared_texts(path: Path, tokenizer) -> list[str]:
    from privtune.registry import crypto

    if not path.is_file():
        raise InputError("file not found (run `privtune prepare` to create the dataset)", where=str(path))
    texts = []
    for lineno, raw in enumerate(crypto.read_bytes_maybe_encrypted(path).splitlines(), start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", where=where) from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", where=where) from None
        texts.append(record_text(obj, where, tokenizer))
    if not texts:
        raise InputError("no records", where=str(path))
    return texts


# ------------------------------------------------------------------------------------------ dataset
def _tokenize(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    # one long document may exceed the model's context: it is cut into blocks below, so the warning is noise
    verbose = tokenizer.verbose if hasattr(tokenizer, "verbose") else None
    tokenizer.verbose = False
    try:
        return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    finally:
        if verbose is not None:
            tokenizer.verbose = verbose


def _examples(blocks: list[list[int]], idx: list[int], prefix: str) -> tuple[list[Example], EncodeStats]:
    out = [Example(f"{prefix}{i}", blocks[i], list(blocks[i]), False) for i in idx]
    stats = EncodeStats(records=len(out), kept=len(out), tokens=sum(len(e) for e in out),
                        supervised_tokens=sum(e.n_supervised for e in out), max_len=max(len(e) for e in out))
    return out, stats


def pack_dataset(tokenizer, data_dir: Path, cfg: TrainConfig):
    """sft.Dataset of packed blocks from a prepared dataset dir or a directory of .txt/.md files."""
    from privtune import fsio
    from privtune.registry import crypto
    from privtune.train.sft import Dataset

    data_dir = Path(data_dir)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer has no EOS token to separate documents", where=cfg.base or "packaged base")
    size = cfg.cpt.block_size
    if (data_dir / "manifest.json").is_file():
        train_docs = _tokenize(tokenizer, read_prepared_texts(data_dir / "train.jsonl", tokenizer))
        val_docs = _tokenize(tokenizer, read_prepared_texts(data_dir / "val.jsonl", tokenizer))
        train_blocks, val_blocks = pack_blocks(train_docs, eos, size), pack_blocks(val_docs, eos, size)
        if not train_blocks or not val_blocks:
            raise InputError("train or val split has no text", where=str(data_dir))
        train, s_train = _examples(train_blocks, list(range(len(train_blocks))), "train-block-")
        val, s_val = _examples(val_blocks, list(range(len(val_blocks))), "val-block-")
        s_train.records, s_val.records = len(train_docs), len(val_docs)
        manifest_sha = crypto.sha256_plaintext(data_dir / "manifest.json")
    else:
        files = text_files(data_dir) if data_dir.exists() else []
        if not files:
            raise InputError("neither a prepared dataset (manifest.json) nor a directory of .txt/.md files",
                             where=str(data_dir))
        docs = _tokenize(tokenizer, read_text_files(files))
        blocks = pack_blocks(docs, eos, size)
        tr, va = split_blocks(len(blocks), cfg.cpt.val_fraction, cfg.seed)
        train, s_train = _examples(blocks, tr, "block-")
        val, s_val = _examples(blocks, va, "block-")
        s_train.records = len(docs)
        s_val.records = 0
        # lineage without a manifest: the hash of the text files themselves
        manifest_sha = fsio.sha256_dir(data_dir) if data_dir.is_dir() else fsio.sha256_file(data_dir)
    log.info("cpt: %d train / %d val blocks of up to %d tokens (%d train tokens)", len(train), len(val), size,
             s_train.tokens)
    return Dataset(data_dir, manifest_sha, train, val, {"train": s_train, "val": s_val})


def train(data_dir: Path, out: Path, cfg: TrainConfig) -> dict:
    """Continued pre-training of a LoRA adapter (the SFT loop over packed blocks); returns run.json."""
    from privtune.train import sft

    return sft.train(data_dir, out, cfg, build_dataset=pack_dataset)
