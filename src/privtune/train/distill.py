"""`privtune train --method distill --teacher PATH`: a larger model (or a tuned run) teaches a smaller one.

1. The teacher answers every training prompt (greedy, `privtune.evaluate.generate`); with `distill.relabel_val`
   the val prompts too, so val loss measures imitation of the teacher.
2. The answers replace the references in a derived dataset, RUN_DIR/distill_data/ (train/val.jsonl + its own
   manifest naming the source dataset's manifest sha256 and the teacher's hashes): lineage stays a hash chain.
3. The student (`--base`) learns it with the SFT recipe (sft.py, LoRA).

The teacher is any local HF model dir or .gguf (resolve_base) or a run dir written by `privtune train`
(base + adapter, load_run_model). Teacher and student must share a tokenizer family only in the sense that
the student's own chat template renders the distilled records: text, not logits, is what is transferred.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.config import TrainConfig
from privtune.errors import InputError
from privtune.registry import crypto

log = logging.getLogger(__name__)

DATA_DIR = "distill_data"


def check_teacher(teacher: str | None) -> Path:
    if not teacher:
        raise InputError("distillation needs a teacher: --teacher PATH (a local model dir, .gguf or run dir)",
                         field="distill.teacher")
    p = Path(teacher).expanduser()
    if not p.exists():
        raise InputError("teacher not found", where=str(p), field="distill.teacher")
    if p.is_dir() and not (p / "run.json").is_file() and not (p / "config.json").is_file():
        raise InputError("teacher must be a model dir (config.json), a .gguf file or a run dir (run.json)",
                         where=str(p), field="distill.teacher")
    return p


def load_teacher(path: Path, device: str) -> tuple[Any, Any, dict]:
    """(model in eval mode, tokenizer, lineage info) for a run dir or a plain base model."""
    if (path / "run.json").is_file():
        from privtune.evaluate.generate import load_run_model

        model, tok, run = load_run_model(path, device=device)
        return model, tok, {"kind": "run", "path": str(path.resolve()), "adapter_sha256": run["_adapter_sha256"],
                            "base_weights_sha256": run["_base"]["weights_sha256"]}
    from privtune.evaluate.generate import resolve_device
    from privtune.models import load_model, load_tokenizer, resolve_base

    base = resolve_base(str(path))
    model = load_model(base).to(resolve_device(device)).eval()
    return model, load_tokenizer(base), {"kind": "model", **base.to_dict()}


def prompt_of(messages) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what the teacher must answer."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [dict(m) for m in messages[:last]]


def distilled_records(records, answers: list[str]) -> tuple[list[dict], list[str]]:
    """Records with the teacher's answers as targets; ids of prompts the teacher left unanswered (dropped)."""
    out, empty = [], []
    for rec, answer in zip(records, answers, strict=True):
        if not answer.strip():
            empty.append(rec.id)
            continue
        out.append({"id": rec.id, "messages": [*prompt_of(rec.messages), {"role": "assistant", "content": answer}],
                    "metadata": {"distilled_from": rec.id}})
    return out, empty


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """Teacher answers may repeat personal data: encrypted at rest when PRIVTUNE_KEY_FILE is set."""
    crypto.write_text_maybe_encrypted(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def build_distill_data(data_dir: Path, dest: Path, cfg: TrainConfig) -> dict:
    """Write the derived dataset to `dest` (atomically); returns its manifest."""
    import torch

    from privtune.evaluate.generate import generate_detailed
    from privtune.train.sft import read_dataset_files

    teacher_path = check_teacher(cfg.distill.teacher)
    train_recs, val_recs, source_sha = read_dataset_files(data_dir)
    if cfg.max_val_records:
        val_recs = val_recs[: cfg.max_val_records]
    model, tok, teacher = load_teacher(teacher_path, cfg.device)
    d = cfg.distill
    with torch.inference_mode():
        gen_train = generate_detailed(model, tok, [prompt_of(r.messages) for r in train_recs], d.max_new_tokens,
                                      d.batch_size, desc="teacher: train prompts")
        gen_val = (generate_detailed(model, tok, [prompt_of(r.messages) for r in val_recs], d.max_new_tokens,
                                     d.batch_size, desc="teacher: val prompts") if d.relabel_val else None)
    del model
    train_rows, train_empty = distilled_records(train_recs, gen_train.texts)
    at_limit = sum(gen_train.hit_limit)
    if gen_val is None:
        val_rows = [{"id": r.id, "messages": list(r.messages), "metadata": {}} for r in val_recs]
        val_empty: list[str] = []
    else:
        val_rows, val_empty = distilled_records(val_recs, gen_val.texts)
        at_limit += sum(gen_val.hit_limit)
    if not train_rows or not val_rows:
        raise InputError("the teacher gave no answer for any train or val prompt (check it is a chat model)",
                         where=str(teacher_path), field="distill.teacher")
    manifest = {"kind": "distilled", "source_dataset": {"path": str(Path(data_dir).resolve()),
                                                        "manifest_sha256": source_sha},
                "teacher": teacher, "max_new_tokens": d.max_new_tokens, "relabel_val": d.relabel_val,
                "counts": {"train": len(train_rows), "val": len(val_rows)},
                "empty_answers": {"train": len(train_empty), "val": len(val_empty)},
                "answers_cut_at_max_new_tokens": at_limit,
                "teacher_seconds": round(gen_train.seconds + (gen_val.seconds if gen_val else 0.0), 3)}
    with fsio.staged_dir(dest) as tmp:
        _write_jsonl(tmp / "train.jsonl", train_rows)
        _write_jsonl(tmp / "val.jsonl", val_rows)
        crypto.write_text_maybe_encrypted(tmp / "manifest.json", json.dumps(manifest, indent=2))
    if train_empty or val_empty:
        log.warning("teacher left %d train / %d val prompts unanswered; they are dropped", len(train_empty),
                    len(val_empty))
    return manifest


def train(data_dir: Path, out: Path, cfg: TrainConfig) -> dict:
    """Distil the teacher into a LoRA adapter on the student base; returns the student's run.json."""
    from privtune.train import sft

    data_dir, out = Path(data_dir), Path(out)
    check_teacher(cfg.distill.teacher)
    sft.check_method(cfg)
    sft.check_run_dir(out)
    dest = out / DATA_DIR
    if not dest.is_dir():  # teacher answers of an attempt that stopped before training are reused
        import torch

        threads = torch.get_num_threads()
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        try:
            fsio.ensure_private_dir(out)
            build_distill_data(data_dir, dest, cfg)
        finally:
            torch.set_num_threads(threads)
    return sft.train(dest, out, cfg)
