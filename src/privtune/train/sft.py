"""`privtune train --method lora`: LoRA SFT with a hand-written PyTorch loop (the recipe, read top to bottom).

We own the loop instead of using HF Trainer because later work needs crash-safe resume, DP-SGD and a fair
speed comparison with TRL. Steps: read + validate the prepared dataset → tokenise with the base model's own
chat template (loss on assistant turns only) → LoRA via PEFT → AdamW + cosine warmup over length-grouped
batches → val loss every epoch, early stopping, the BEST adapter saved atomically → run.json + registry.
Everything the user might misconfigure is checked before RUN_DIR is created, so a bad input writes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path

from privtune import __version__, fsio
from privtune.config import TrainConfig
from privtune.errors import InputError
from privtune.registry import crypto, hooks
from privtune.train.collate import (
    EncodeStats,
    Example,
    collate,
    encode_records,
    length_grouped_batches,
    sorted_batches,
)
from privtune.train.methods import artefact_dir, check_method, setup_model
from privtune.train.records import read_records

log = logging.getLogger(__name__)

# what a run directory may already hold when training starts: inputs derived for this run (distill.py)
RUN_DIR_INPUTS = ("distill_data",)
METRIC_KEYS = ("step", "epoch", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed_s")


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class Dataset:
    path: Path
    manifest_sha256: str
    train: list[Example]
    val: list[Example]
    stats: dict[str, EncodeStats] = field(default_factory=dict)


def check_run_dir(out: Path) -> None:
    """Never overwrite a run silently: RUN_DIR must be new or empty."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", where=str(out))
    if not out.is_dir() or all(p.name in RUN_DIR_INPUTS for p in out.iterdir()):
        return
    run_json = out / "run.json"
    status = None
    if run_json.is_file():
        try:
            status = json.loads(run_json.read_text(encoding="utf-8")).get("status")
        except (OSError, ValueError, AttributeError):
            status = "unreadable"
    if status == "finished":
        raise InputError("already holds a finished run; choose a new --out or delete it", where=str(out))
    raise InputError(f"is not empty (run status: {status or 'unknown'}); choose a new --out "
                     "(resuming an unfinished run is --resume, issue #4)", where=str(out))


def read_dataset_files(data_dir: Path):
    """(train records, val records, manifest sha256) of a prepared dataset directory."""
    if not data_dir.is_dir():
        raise InputError("dataset directory not found (create it with `privtune prepare`)", where=str(data_dir))
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        raise InputError("not a prepared dataset: manifest.json is missing (create it with `privtune prepare`)",
                         where=str(manifest))
    try:
        json.loads(crypto.read_text_maybe_encrypted(manifest))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"manifest is not valid JSON ({e})", where=str(manifest)) from None
    train = read_records(data_dir / "train.jsonl")
    val = read_records(data_dir / "val.jsonl")
    return train, val, crypto.sha256_plaintext(manifest)  # plaintext hash: stable across keys and rotations


def tokenize_dataset(tokenizer, data_dir: Path, cfg: TrainConfig) -> Dataset:
    train_recs, val_recs, manifest_sha = read_dataset_files(data_dir)
    if cfg.max_val_records:
        val_recs = val_recs[: cfg.max_val_records]
    try:
        train, s_train = encode_records(tokenizer, train_recs, cfg.max_seq_len)
        val, s_val = encode_records(tokenizer, val_recs, cfg.max_seq_len)
    except ValueError as e:
        raise InputError(str(e), where=cfg.base or "packaged base model") from None
    for name, s, path in (("train", s_train, "train.jsonl"), ("val", s_val, "val.jsonl")):
        if s.truncated or s.dropped:
            log.warning("%s: %d of %d records truncated to max_seq_len=%d, %d dropped with no answer token left",
                        name, s.truncated, s.records, cfg.max_seq_len, s.dropped)
        if s.control_token_records:
            log.warning("%s: %d records contain control-token strings (e.g. <|im_end|>) in their text; they are "
                        "tokenised as control tokens, as at inference", name, s.control_token_records)
        if s.template_fallback:
            log.warning("%s: the chat template does not render prefixes consistently for %d records; their "
                        "answer spans were located by content", name, s.template_fallback)
        if s.kept == 0:
            raise InputError(f"no record has an answer token within max_seq_len={cfg.max_seq_len}; "
                             "raise max_seq_len", where=str(data_dir / path))
    return Dataset(data_dir, manifest_sha, train, val, {"train": s_train, "val": s_val})


def lora_targets(model, wanted: list[str]) -> list[str]:
    """The configured target module names that exist as Linear layers in the model."""
    import torch

    present = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
    present.discard("lm_head")
    keep = [t for t in wanted if t in present]
    if not keep:
        raise InputError(f"none of {wanted} is a linear layer of this model; available: {sorted(present)}",
                         field="lora.target_modules")
    missing = [t for t in wanted if t not in present]
    if missing:
        log.info("LoRA targets not in this model, skipped: %s", ", ".join(missing))
    return keep


# ----------------------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but CUDA is not available", field="device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def evaluate_loss(model, loss_fn, examples: list[Example], batch_size: int, pad_id: int, device) -> float:
    """Mean loss per supervised token over all examples."""
    import torch

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for idx in sorted_batches([len(e) for e in examples], batch_size):
            s, k = loss_fn(to_device(collate([examples[i] for i in idx], pad_id), device))
            total += float(s)
            n += k
    model.train(was_training)
    return total / max(n, 1)


def save_adapter(model, tokenizer, final: Path) -> None:
    """PEFT adapter (safetensors) + the base tokenizer and chat template, swapped in atomically.

    With PRIVTUNE_KEY_FILE set the files are encrypted at rest and plaintext only ever exists on tmpfs.
    """
    with crypto.encrypted_output(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def _progress():
    from rich import get_console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=get_console())  # the console RichHandler logs to


def make_optimizer(model, cfg: TrainConfig, total_steps: int):
    """AdamW over the LoRA parameters + cosine schedule with warmup.

    The schedule is built one step ahead (last_epoch=0 over total+1 steps) so that neither the first step
    (warmup from 0) nor the last (end of the cosine) runs with a learning rate of exactly 0.
    """
    import torch
    from transformers import get_cosine_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    sched = get_cosine_schedule_with_warmup(opt, warmup, total_steps + 1, last_epoch=0)
    return params, opt, sched


def _versions() -> dict:
    return {name: dist_version(name) for name in ("torch", "transformers", "peft")}


# ------------------------------------------------------------------------------------------ recipe
def train(data_dir: Path, out: Path, cfg: TrainConfig, build_dataset=None) -> dict:
    """Train on DATA_DIR into RUN_DIR=out (an adapter, or the full model for method 'full'); returns run.json.

    `build_dataset(tokenizer, data_dir, cfg) -> Dataset` replaces the chat tokenisation (cpt.py packs raw text).
    """
    import torch

    t_start = time.time()
    data_dir, out = Path(data_dir), Path(out)
    if cfg.method == "dpo":
        raise InputError("method 'dpo' trains with privtune.train.dpo, not the SFT loop", field="method")
    check_method(cfg)
    check_run_dir(out)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(data_dir, out, cfg, t_start, build_dataset or tokenize_dataset)
    finally:
        torch.set_num_threads(threads)  # a library call must not change the caller's process settings


def _train(data_dir: Path, out: Path, cfg: TrainConfig, t_start: float, build_dataset) -> dict:
    from privtune.models import load_tokenizer, resolve_base
    from privtune.train.loss import make_loss_fn

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)

    base = resolve_base(cfg.base)
    tokenizer = load_tokenizer(base)
    if build_dataset is tokenize_dataset and not getattr(tokenizer, "chat_template", None):
        raise InputError("the base model has no chat template; SFT needs one", where=base.path)
    data = build_dataset(tokenizer, data_dir, cfg)
    pad_id = tokenizer.pad_token_id

    model, targets = setup_model(base, cfg, device, lora_targets)  # per method: methods.py
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    probe_idx = sorted_batches([len(e) for e in data.val], min(cfg.eval_batch_size, 4))[-1]
    loss_fn, loss_mode = make_loss_fn(model, to_device(collate([data.val[i] for i in probe_idx], pad_id), device))

    n_batches = math.ceil(len(data.train) / cfg.batch_size)
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    optim = make_optimizer(model, cfg, total_steps)
    load_s = time.time() - t_start
    log.info("base %s (%s), %d train / %d val records, %d optimizer steps (%d/epoch), LoRA r=%d on %s: %d "
             "trainable params of %d, loss=%s, device=%s", base.name, base.weights_sha256[:12], len(data.train),
             len(data.val), total_steps, steps_per_epoch, cfg.lora.r, ",".join(targets), n_trainable, n_total,
             loss_mode, device)

    # Inputs are all valid from here on: RUN_DIR is created.
    fsio.ensure_private_dir(out)
    state = LoopState()
    run = {
        "status": "running", "privtune_version": __version__, "method": cfg.method,
        "artefact": artefact_dir(cfg.method), "adapter_name": out.name,
        "config": cfg.model_dump(), "base": base.to_dict(),
        "dataset": {"path": str(data_dir.resolve()), "manifest_sha256": data.manifest_sha256,
                    "n_train": len(data.train), "n_val": len(data.val)},
        "tokenization": {k: v.to_dict() for k, v in data.stats.items()},
        "truncated_records": data.stats["train"].truncated + data.stats["val"].truncated,
        "lora_target_modules": targets, "trainable_params": n_trainable, "total_params": n_total,
        "loss_mode": loss_mode, "device": str(device), "started_at": started_at, "versions": _versions(),
    }
    fsio.write_json(out / "run.json", run)  # status "running": the directory is visibly taken
    try:
        _loop(model, tokenizer, loss_fn, optim, data, cfg, out, device, total_steps, state)
    except BaseException as e:
        run.update(state.summary(), status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                   error=type(e).__name__, finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
        fsio.write_json(out / "run.json", run)
        _record(out, run)
        try:
            hooks.trained(out, run)
        except Exception as log_error:  # noqa: BLE001 - the training error is the one to report
            log.error("could not write the audit-log entry for the failed run: %s", log_error)
        raise

    run.update(state.summary())
    run["timings"] = {"load_s": round(load_s, 3), "train_s": round(state.train_s, 3),
                      "eval_s": round(state.eval_s, 3), "total_s": round(time.time() - t_start, 3)}
    artefact_sha = crypto.sha256_dir_plaintext(out / run["artefact"])
    run.update(status="finished", **{f"{run['artefact']}_sha256": artefact_sha},
               finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
    fsio.write_json(out / "run.json", run)
    _record(out, run)
    hooks.trained(out, run)  # fail closed: an unrecorded run is an error for a regulated user
    log.info("best val loss %.4f at epoch %d (initial %.4f); %s %s", run["best_val_loss"], run["best_epoch"],
             run["initial_val_loss"], run["artefact"], out / run["artefact"])
    return run


def _record(out: Path, run: dict) -> None:
    """Registry row for the run; the run dir is the source of truth, so a registry failure does not undo it."""
    from privtune.registry.store import record_run

    try:
        record_run(out, run)
    except Exception as e:  # noqa: BLE001 - any database error
        log.error("run %s is complete on disk but could not be recorded in the registry (%s: %s)", out,
                  type(e).__name__, str(e).splitlines()[0] if str(e) else "")


@dataclass
class LoopState:
    """Where training stands; also what run.json reports if the run fails part-way."""

    step: int = 0
    epochs_run: int = 0
    initial_val_loss: float = math.nan
    val_loss: float = math.nan
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    supervised_tokens: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0

    def summary(self) -> dict:
        def num(x: float) -> float | None:  # a failed run may have no val loss yet; JSON has no inf/nan
            return x if math.isfinite(x) else None

        return {"best_epoch": self.best_epoch, "best_val_loss": num(self.best_val_loss),
                "initial_val_loss": num(self.initial_val_loss), "final_val_loss": num(self.val_loss),
                "epochs_run": self.epochs_run, "steps": self.step, "stopped_early": self.stopped_early,
                "supervised_tokens": self.supervised_tokens}


def record_val(state: LoopState, val: float, epoch: int, min_delta: float, patience: int, last_step: bool) -> bool:
    """Early-stopping bookkeeping after an epoch's eval; True when this is the best val loss so far."""
    state.val_loss = val
    if val < state.best_val_loss - min_delta:
        state.best_val_loss, state.best_epoch, state.bad_epochs = val, epoch, 0
        return True
    state.bad_epochs += 1
    state.stopped_early = state.bad_epochs >= patience and not last_step
    return False


def train_step(loss_fn, micro_batches: list[dict], n_supervised: int, params, opt, sched, max_grad_norm: float,
               step: int) -> tuple[float, float, float]:
    """One optimizer step over accumulated micro-batches; the loss is the mean over all their supervised tokens.

    Returns (sum of token losses, grad norm before clipping, learning rate used).
    """
    import torch

    opt.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for batch in micro_batches:
        s, _ = loss_fn(batch)
        (s / n_supervised).backward()
        loss_sum += float(s.detach())
    if not math.isfinite(loss_sum):
        raise FloatingPointError(f"training loss is {loss_sum} at step {step}; lower the learning rate")
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    return loss_sum, grad_norm, lr


def _loop(model, tokenizer, loss_fn, optim, data: Dataset, cfg: TrainConfig, out: Path, device,
          total_steps: int, state: LoopState) -> None:
    """Epochs of optimizer steps; val loss at each epoch end (and at max_steps); the best adapter is kept."""
    params, opt, sched = optim
    pad_id = tokenizer.pad_token_id
    metrics_path = out / "metrics.jsonl"
    lengths = [len(e) for e in data.train]
    t0 = time.time()

    def run_eval() -> float:
        te = time.time()
        v = evaluate_loss(model, loss_fn, data.val, cfg.eval_batch_size, pad_id, device)
        state.eval_s += time.time() - te
        return v

    state.initial_val_loss = state.val_loss = run_eval()
    fsio.append_jsonl(metrics_path, {"step": 0, "epoch": 0.0, "train_loss": None, "val_loss": state.val_loss,
                                     "lr": opt.param_groups[0]["lr"], "tokens_per_s": None,
                                     "elapsed_s": round(time.time() - t0, 3)})
    win_loss, win_tokens, win_all, win_time = 0.0, 0, 0, 0.0  # since the last metrics row
    model.train()
    with _progress() as progress:
        task = progress.add_task("train", total=total_steps, info=f"val {state.val_loss:.4f}")
        while state.epochs_run < cfg.epochs and state.step < total_steps and not state.stopped_early:
            state.epochs_run += 1
            epoch = state.epochs_run
            batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed * 1_000_003 + epoch,
                                             cfg.group_by_length)
            groups = [batches[i: i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]
            for gi, group in enumerate(groups):
                ts = time.time()
                n_tok = sum(data.train[i].n_supervised for b in group for i in b)
                micro = [to_device(collate([data.train[i] for i in b], pad_id), device) for b in group]
                loss_sum, grad_norm, lr = train_step(loss_fn, micro, n_tok, params, opt, sched, cfg.max_grad_norm,
                                                     state.step + 1)
                state.step += 1
                dt = time.time() - ts
                state.train_s += dt
                state.supervised_tokens += n_tok
                win_loss, win_tokens, win_time = win_loss + loss_sum, win_tokens + n_tok, win_time + dt
                win_all += sum(int(b["attention_mask"].sum()) for b in micro)

                last_step = state.step >= total_steps
                evaluated = None
                if gi == len(groups) - 1 or last_step:
                    evaluated = run_eval()
                    if record_val(state, evaluated, epoch, cfg.min_delta, cfg.patience, last_step):
                        save_adapter(model, tokenizer, out / artefact_dir(cfg.method))
                    log.info("epoch %d: val loss %.4f%s", epoch, evaluated, " (best)" if state.best_epoch == epoch
                             else f" (best {state.best_val_loss:.4f} at epoch {state.best_epoch})")
                tps = win_tokens / win_time if win_time > 0 else 0.0
                all_tps = win_all / win_time if win_time > 0 else 0.0
                info = (f"loss {win_loss / max(win_tokens, 1):.4f} | val {state.val_loss:.4f} | "
                        f"{tps:.0f} supervised tok/s ({all_tps:.0f} all) | lr {lr:.2e}")
                if state.step % cfg.log_every == 0 or evaluated is not None:
                    fsio.append_jsonl(metrics_path, {
                        "step": state.step, "epoch": round(epoch - 1 + (gi + 1) / len(groups), 4),
                        "train_loss": win_loss / max(win_tokens, 1), "val_loss": evaluated, "lr": lr,
                        "tokens_per_s": round(tps, 2), "all_tokens_per_s": round(all_tps, 2),
                        "elapsed_s": round(time.time() - t0, 3), "grad_norm": round(grad_norm, 6)})
                    win_loss, win_tokens, win_all, win_time = 0.0, 0, 0, 0.0
                progress.update(task, advance=1, info=info)
                if last_step:
                    break
        if state.stopped_early:
            progress.update(task, total=state.step)
            log.info("early stop: val loss did not improve for %d epochs", cfg.patience)
    if state.best_val_loss >= state.initial_val_loss:
        log.warning("training did not lower the val loss (best %.4f vs %.4f before training): check the data "
                    "and the learning rate", state.best_val_loss, state.initial_val_loss)
