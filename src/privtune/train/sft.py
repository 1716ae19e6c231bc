"""`privtune train --method lora`: LoRA SFT with a hand-written PyTorch loop (the recipe, read top to bottom).

We own the loop instead of using HF Trainer because later work needs crash-safe resume, DP-SGD and a fair
speed comparison with TRL. Steps: read + validate the prepared dataset → tokenise with the base model's own
chat template (loss on assistant turns only) → LoRA via PEFT → AdamW + cosine warmup over length-grouped
batches → val loss every epoch, early stopping, the BEST adapter saved atomically → run.json + registry.
Everything the user might misconfigure is checked before RUN_DIR is created, so a bad input writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import TrainConfig
from privtune.errors import InputError
from privtune.registry import crypto, hooks
from privtune.train import checkpoint, distributed, privacy
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

LOCK_FILE = ".lock"
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
    raise InputError(f"is not empty (run status: {status or 'unknown'}); choose a new --out, or continue an "
                     f"unfinished run with `privtune train --resume {out}`", where=str(out))


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


def evaluate_loss(model, loss_fn, examples: list[Example], batch_size: int, pad_id: int, device,
                  dist: distributed.Dist | None = None) -> float:
    """Mean loss per supervised token over all examples (each process of a data-parallel run takes a share)."""
    import torch

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    batches = sorted_batches([len(e) for e in examples], batch_size)
    with torch.no_grad():
        for idx in dist.shard(batches) if dist else batches:
            s, k = loss_fn(to_device(collate([examples[i] for i in idx], pad_id), device))
            total += float(s)
            n += k
    model.train(was_training)
    if dist:
        total, n = dist.all_sum([total, n], device)
    return total / max(n, 1)


def save_adapter(model, tokenizer, final: Path) -> None:
    """PEFT adapter (safetensors) + the base tokenizer and chat template, swapped in atomically.

    With PRIVTUNE_KEY_FILE set the files are encrypted at rest and plaintext only ever exists on tmpfs.
    """
    with crypto.encrypted_output(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def _progress(disable: bool = False):
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
                    TimeRemainingColumn(), console=get_console(), disable=disable)  # the console RichHandler logs to


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
    t_start = time.time()
    data_dir, out = Path(data_dir), Path(out)
    if cfg.method == "dpo":
        raise InputError("method 'dpo' trains with privtune.train.dpo, not the SFT loop", field="method")
    check_method(cfg)
    check_run_dir(out)
    with _threads(cfg.num_threads):
        return _train(data_dir, out, cfg, t_start, build_dataset or tokenize_dataset)


def resume(run_dir: Path, num_threads: int | None = None, build_dataset=None) -> dict:
    """Continue an unfinished run from its newest checkpoint: data and config come from RUN_DIR/run.json.

    The checkpoint restores weights, optimizer, scheduler, RNG states and the position in the epoch's seeded
    batch order, so the resumed run ends exactly where an uninterrupted one would.
    """
    t_start = time.time()
    run_dir = Path(run_dir)
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise InputError("not a run directory: run.json is missing", where=str(run_dir))
    first_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun/accelerate only process 0 locks
    with _run_lock(run_dir) if first_process else contextlib.nullcontext():
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
            cfg = TrainConfig(**run["config"])
            data_dir = Path(run["dataset"]["path"])
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"run.json cannot be resumed from ({type(e).__name__}: {str(e).splitlines()[0]})",
                             where=str(run_json)) from None
        if run.get("status") == "finished":
            raise InputError("the run has already finished; nothing to resume", where=str(run_dir))
        if cfg.method == "dpo":
            raise InputError("DPO runs (TRL's trainer) cannot be resumed; start them again", where=str(run_dir))
        ckpt = checkpoint.latest(run_dir)
        if ckpt is None:
            raise InputError("no checkpoint to resume from (the run stopped before its first one); start it again "
                             "with a new --out", where=str(run_dir / checkpoint.CHECKPOINTS))
        if num_threads:
            cfg = cfg.model_copy(update={"num_threads": num_threads})
        if build_dataset is None and cfg.method == "cpt":
            from privtune.train.cpt import pack_dataset as build_dataset
        with _threads(cfg.num_threads):
            return _train(data_dir, run_dir, cfg, t_start, build_dataset or tokenize_dataset, resumed=(run, ckpt),
                          locked=True)


@contextmanager
def _threads(n: int | None):
    """Set torch's CPU threads for the run; a library call must not change the caller's process settings."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _run_lock(run_dir: Path):
    """One process per run directory (flock: released by the kernel when a process dies, even by kill -9)."""
    import fcntl

    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another privtune process is training this run", where=str(run_dir)) from None
        yield
    finally:
        os.close(fd)


def _train(data_dir: Path, out: Path, cfg: TrainConfig, t_start: float, build_dataset,
           resumed: tuple[dict, Path] | None = None, locked: bool = False) -> dict:
    from privtune.models import load_tokenizer, resolve_base
    from privtune.train.loss import make_loss_fn

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    dist, dist_device = distributed.setup(cfg.device)  # accelerate launch / torchrun: one process per device
    device = dist_device or pick_device(cfg.device)
    seed_everything(cfg.seed)

    base = resolve_base(cfg.base)
    tokenizer = load_tokenizer(base)
    if build_dataset is tokenize_dataset and not getattr(tokenizer, "chat_template", None):
        raise InputError("the base model has no chat template; SFT needs one", where=base.path)
    data = build_dataset(tokenizer, data_dir, cfg)
    pad_id = tokenizer.pad_token_id
    if resumed:
        _check_same_inputs(resumed[0], data.manifest_sha256, base.weights_sha256, data_dir)

    model, targets = setup_model(base, cfg, device, lora_targets)  # per method: methods.py
    if cfg.gradient_checkpointing:
        enable_activation_checkpointing(model)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    probe_idx = sorted_batches([len(e) for e in data.val], min(cfg.eval_batch_size, 4))[-1]
    loss_fn, loss_mode = make_loss_fn(model, to_device(collate([data.val[i] for i in probe_idx], pad_id), device))
    loss_fn = with_autocast(loss_fn, autocast_dtype(cfg.bf16, device))

    logical_batch = cfg.batch_size * cfg.grad_accum
    steps_per_epoch = math.ceil(math.ceil(len(data.train) / cfg.batch_size) / cfg.grad_accum)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    dp = None
    if cfg.dp.enabled:
        if cfg.method == "full":
            raise InputError("DP-SGD trains adapter parameters; use --method lora or dora", field="dp")
        if dist.world > 1:
            raise InputError("DP-SGD runs in one process (per-record gradients); launch without accelerate",
                             field="dp")
        dp = privacy.plan(cfg.dp, len(data.train), logical_batch, total_steps)
    optim = make_optimizer(model, cfg, total_steps)
    load_s = time.time() - t_start
    log.info("base %s (%s), %d train / %d val records, %d optimizer steps (%d/epoch), LoRA r=%d on %s: %d "
             "trainable params of %d, loss=%s, device=%s", base.name, base.weights_sha256[:12], len(data.train),
             len(data.val), total_steps, steps_per_epoch, cfg.lora.r, ",".join(targets), n_trainable, n_total,
             loss_mode, device)
    if dp:
        log.info("DP-SGD: target ε=%s, δ=%.2g, noise multiplier σ=%.4f, clipping C=%g, sampling rate q=%.4g, "
                 "%d steps (%s accountant)", dp.target_epsilon, dp.delta, dp.noise_multiplier, dp.max_grad_norm,
                 dp.sample_rate, total_steps, dp.accountant)

    # Inputs are all valid from here on: RUN_DIR is created.
    fsio.ensure_private_dir(out)
    main = dist.main  # only process 0 of a data-parallel run writes files
    with contextlib.nullcontext() if locked or not main else _run_lock(out):
        state = LoopState()
        dp_seed = cfg.dp.seed if cfg.dp.seed is not None else privacy.new_secret_seed()
        if resumed:
            run = resumed[0]
            payload = checkpoint.load(resumed[1])
            checkpoint.load_trainable_state(model, payload["model"])
            optim[1].load_state_dict(payload["optimizer"])
            optim[2].load_state_dict(payload["scheduler"])
            state = LoopState(**payload["loop"])
            dp_seed = payload["dp_seed"]
            if main:
                checkpoint.remove_stale_temps(out)
                checkpoint.truncate_metrics(out / "metrics.jsonl", state.step)
            run.setdefault("resumes", []).append({"at": started_at, "from_step": state.step,
                                                  "checkpoint": resumed[1].name})
            run.update(status="running")
            for k in ("error", "finished_at"):
                run.pop(k, None)
            log.info("resuming %s from step %d (epoch %d, batch %d of %d)", out, state.step, state.epochs_run,
                     state.groups_done, steps_per_epoch)
        else:
            run = {
                "status": "running", "privtune_version": __version__, "method": cfg.method,
                "artefact": artefact_dir(cfg.method), "adapter_name": cfg.adapter_name or out.name,
                "config": cfg.model_dump(), "base": base.to_dict(),
                "dataset": {"path": str(data_dir.resolve()), "manifest_sha256": data.manifest_sha256,
                            "n_train": len(data.train), "n_val": len(data.val)},
                "tokenization": {k: v.to_dict() for k, v in data.stats.items()},
                "truncated_records": data.stats["train"].truncated + data.stats["val"].truncated,
                "lora_target_modules": targets, "trainable_params": n_trainable, "total_params": n_total,
                "loss_mode": loss_mode, "device": str(device), "started_at": started_at, "versions": _versions(),
            }
        if dp:
            dp.steps = state.step
            dp.epsilon = privacy.epsilon_spent(dp.noise_multiplier, dp.sample_rate, state.step, dp.delta,
                                               dp.accountant)
            run["dp"] = dp.to_dict()
        if main:
            fsio.write_json(out / "run.json", run)  # status "running": the directory is visibly taken
        if resumed:
            checkpoint.restore_rng(payload["rng"])  # last: nothing may draw from the generators before the loop
        loop = Loop(model, tokenizer, loss_fn, optim, data, cfg, out, device, total_steps, steps_per_epoch, state,
                    dp, dp_seed, dist)
        try:
            loop.run()
        except BaseException as e:
            run.update(state.summary(), status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                       error=type(e).__name__, finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
            if dp:
                run["dp"] = dp.to_dict()
            if not main:
                raise
            fsio.write_json(out / "run.json", run)
            _record(out, run)
            try:
                hooks.trained(out, run)
            except Exception as log_error:  # noqa: BLE001 - the training error is the one to report
                log.error("could not write the audit-log entry for the failed run: %s", log_error)
            raise

        run.update(state.summary())
        if dp:
            run["dp"] = dp.to_dict()
        run["timings"] = {"load_s": round(load_s, 3), "train_s": round(state.train_s, 3),
                          "eval_s": round(state.eval_s, 3), "total_s": round(time.time() - t_start, 3)}
        if not main:
            dist.barrier()  # process 0 is writing the artefacts
            return run
        artefact_sha = crypto.sha256_dir_plaintext(out / run["artefact"])
        run.update(status="finished", **{f"{run['artefact']}_sha256": artefact_sha},
                   finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
        fsio.write_json(out / "run.json", run)
        checkpoint.remove_all(out)  # they hold weights derived from the data; the best artefact is kept
        _record(out, run)
        hooks.trained(out, run)  # fail closed: an unrecorded run is an error for a regulated user
        (out / LOCK_FILE).unlink(missing_ok=True)
        dist.barrier()
    log.info("best val loss %.4f at epoch %d (initial %.4f); %s %s", run["best_val_loss"], run["best_epoch"],
             run["initial_val_loss"], run["artefact"], out / run["artefact"])
    if dp:
        log.info("privacy spent: ε=%.3f at δ=%.2g over %d steps", dp.epsilon, dp.delta, dp.steps)
    return run


def _check_same_inputs(run: dict, manifest_sha: str, weights_sha: str, data_dir: Path) -> None:
    """Resuming on changed data or another base would silently mix two trainings."""
    if run.get("dataset", {}).get("manifest_sha256") != manifest_sha:
        raise InputError("the dataset changed since the run started (manifest sha256 differs); cannot resume",
                         where=str(data_dir / "manifest.json"))
    if run.get("base", {}).get("weights_sha256") != weights_sha:
        raise InputError("the base model's weights changed since the run started; cannot resume", field="base")


def enable_activation_checkpointing(model) -> None:
    """Recompute each decoder layer's activations in the backward pass (non-reentrant: fine with frozen bases)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers ≥ 5.x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def autocast_dtype(setting: str, device):
    """bfloat16 autocast only where it is fast and safe: CUDA with native bf16 ('auto'); 'on' forces it."""
    import torch

    if setting == "off":
        return None
    if setting == "on":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None  # CPU without AMX/avx512_bf16 would emulate bf16 slower than fp32


def with_autocast(loss_fn, dtype):
    if dtype is None:
        return loss_fn
    import torch

    def run(batch):
        with torch.autocast(device_type=batch["input_ids"].device.type, dtype=dtype):
            return loss_fn(batch)

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
    """Where training stands: what a checkpoint saves and what run.json reports if the run fails part-way."""

    step: int = 0
    epochs_run: int = 0  # the epoch in progress (1-based) or the last one finished
    groups_done: int = 0  # optimizer steps done in epoch `epochs_run`: the data position inside the epoch
    initial_val_loss: float = math.nan
    val_loss: float = math.nan
    best_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    supervised_tokens: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    elapsed_s: float = 0.0  # loop wall time over all processes of a resumed run
    win_loss: float = 0.0  # since the last metrics row
    win_tokens: int = 0
    win_all: int = 0
    win_time: float = 0.0

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
               step: int, sync=None) -> tuple[float, float, float]:
    """One optimizer step over accumulated micro-batches; the loss is the mean over all their supervised tokens.

    `sync(params)` sums the gradients over data-parallel processes before clipping. Returns (sum of token losses,
    grad norm before clipping, learning rate used).
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
    if sync:
        sync(params)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    return loss_sum, grad_norm, lr


@dataclass
class Loop:
    """Epochs of optimizer steps from wherever `state` stands; val loss at each epoch end (and at the last
    step), the best artefact kept, a resumable checkpoint every `checkpoint_every` steps and at each epoch end."""

    model: Any
    tokenizer: Any
    loss_fn: Any
    optim: tuple
    data: Dataset
    cfg: TrainConfig
    out: Path
    device: Any
    total_steps: int
    steps_per_epoch: int
    state: LoopState
    dp: privacy.DPPlan | None = None
    dp_seed: int = 0
    dist: distributed.Dist = field(default_factory=distributed.Dist)

    def epoch_groups(self, epoch: int) -> list[list[list[int]]]:
        """The epoch's optimizer steps, each a list of micro-batches of record indices (seeded, reproducible)."""
        n = len(self.data.train)
        if self.dp:  # Poisson sampling from the secret seed; one record per backward pass
            return [[b] for b in privacy.poisson_batches(n, self.dp.sample_rate, self.steps_per_epoch, self.dp_seed,
                                                         epoch)]
        batches = length_grouped_batches([len(e) for e in self.data.train], self.cfg.batch_size,
                                         self.cfg.seed * 1_000_003 + epoch, self.cfg.group_by_length)
        return [batches[i: i + self.cfg.grad_accum] for i in range(0, len(batches), self.cfg.grad_accum)]

    def evaluate(self) -> float:
        te = time.time()
        v = evaluate_loss(self.model, self.loss_fn, self.data.val, self.cfg.eval_batch_size,
                          self.tokenizer.pad_token_id, self.device, self.dist)
        self.state.eval_s += time.time() - te
        return v

    def step(self, group: list[list[int]]) -> dict:
        """One optimizer step; returns what the metrics row reports about it."""
        cfg, st, pad_id = self.cfg, self.state, self.tokenizer.pad_token_id
        params, opt, sched = self.optim
        records = [self.data.train[i] for b in group for i in b]
        n_tok = sum(e.n_supervised for e in records)
        if self.dp:
            samples = [to_device(collate([e], pad_id), self.device) for e in records]
            loss_sum, grad_norm, clipped, lr = privacy.dp_step(self.loss_fn, samples, params, opt, sched, self.dp,
                                                               self.dp_seed, st.step + 1)
            n_all = sum(len(e) for e in records)
            eps = self.dp.epsilon
            extra = {"epsilon": round(eps, 6) if math.isfinite(eps) else None, "clipped_frac": round(clipped, 4),
                     "batch_records": len(records)}
        else:  # data-parallel: each process its share of every micro-batch; n_tok is the step's total
            shares = [self.dist.shard(b) for b in group]
            micro = [to_device(collate([self.data.train[i] for i in b], pad_id), self.device) for b in shares if b]
            loss_sum, grad_norm, lr = train_step(self.loss_fn, micro, n_tok, params, opt, sched, cfg.max_grad_norm,
                                                 st.step + 1, sync=self.dist.sum_grads)
            n_all = sum(int(b["attention_mask"].sum()) for b in micro)
            if self.dist.world > 1:
                loss_sum, n_all = self.dist.all_sum([loss_sum, n_all], self.device)
                n_all = int(n_all)
            extra = {}
        st.win_loss, st.win_tokens, st.win_all = st.win_loss + loss_sum, st.win_tokens + n_tok, st.win_all + n_all
        st.supervised_tokens += n_tok
        return {"lr": lr, "grad_norm": round(grad_norm, 6), **extra}

    def save_checkpoint(self) -> None:
        _, opt, sched = self.optim
        checkpoint.save(self.out, {
            "step": self.state.step, "model": checkpoint.trainable_state(self.model), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": checkpoint.capture_rng(), "loop": asdict(self.state),
            "dp_seed": self.dp_seed}, self.cfg.keep_checkpoints)

    def run(self) -> None:
        cfg, st, main = self.cfg, self.state, self.dist.main
        metrics_path = self.out / "metrics.jsonl"
        t0 = time.time() - st.elapsed_s
        if st.step == 0 and st.epochs_run == 0:
            st.initial_val_loss = st.val_loss = self.evaluate()
            if main:
                fsio.append_jsonl(metrics_path, {
                    "step": 0, "epoch": 0.0, "train_loss": None, "val_loss": st.val_loss,
                    "lr": self.optim[1].param_groups[0]["lr"], "tokens_per_s": None,
                    "elapsed_s": round(time.time() - t0, 3)})
        self.model.train()
        with _progress(disable=not main) as progress:
            task = progress.add_task("train", total=self.total_steps, completed=st.step, info=f"val {st.val_loss:.4f}")
            while True:
                if st.epochs_run == 0 or st.groups_done >= self.steps_per_epoch:
                    if st.epochs_run >= cfg.epochs or st.step >= self.total_steps or st.stopped_early:
                        break
                    st.epochs_run, st.groups_done = st.epochs_run + 1, 0
                elif st.step >= self.total_steps:
                    break
                epoch = st.epochs_run
                groups = self.epoch_groups(epoch)
                for gi in range(st.groups_done, len(groups)):
                    ts = time.time()
                    row = self.step(groups[gi])
                    st.step, st.groups_done = st.step + 1, gi + 1
                    dt = time.time() - ts
                    st.train_s, st.win_time = st.train_s + dt, st.win_time + dt
                    last_step = st.step >= self.total_steps
                    evaluated = None
                    if gi == len(groups) - 1 or last_step:
                        evaluated = self.evaluate()
                        if record_val(st, evaluated, epoch, cfg.min_delta, cfg.patience, last_step) and main:
                            save_adapter(self.model, self.tokenizer, self.out / artefact_dir(cfg.method))
                        log.info("epoch %d: val loss %.4f%s", epoch, evaluated, " (best)" if st.best_epoch == epoch
                                 else f" (best {st.best_val_loss:.4f} at epoch {st.best_epoch})")
                    tps = st.win_tokens / st.win_time if st.win_time > 0 else 0.0
                    all_tps = st.win_all / st.win_time if st.win_time > 0 else 0.0
                    info = (f"loss {st.win_loss / max(st.win_tokens, 1):.4f} | val {st.val_loss:.4f} | "
                            f"{tps:.0f} supervised tok/s ({all_tps:.0f} all) | lr {row['lr']:.2e}")
                    if self.dp:
                        info += f" | ε {self.dp.epsilon:.2f}"
                    st.elapsed_s = time.time() - t0
                    if main and (st.step % cfg.log_every == 0 or evaluated is not None):
                        fsio.append_jsonl(metrics_path, {
                            **row, "step": st.step, "epoch": round(epoch - 1 + (gi + 1) / len(groups), 4),
                            "train_loss": st.win_loss / max(st.win_tokens, 1), "val_loss": evaluated,
                            "tokens_per_s": round(tps, 2), "all_tokens_per_s": round(all_tps, 2),
                            "elapsed_s": round(st.elapsed_s, 3)})
                    if st.step % cfg.log_every == 0 or evaluated is not None:
                        st.win_loss, st.win_tokens, st.win_all, st.win_time = 0.0, 0, 0, 0.0
                    if main and (st.step % cfg.checkpoint_every == 0 or evaluated is not None):
                        self.save_checkpoint()
                    progress.update(task, advance=1, info=info)
                    if last_step or (evaluated is not None and st.stopped_early):
                        break
            if st.stopped_early:
                progress.update(task, total=st.step)
                log.info("early stop: val loss did not improve for %d epochs", cfg.patience)
        if st.best_val_loss >= st.initial_val_loss:
            log.warning("training did not lower the val loss (best %.4f vs %.4f before training): check the data "
                        "and the learning rate", st.best_val_loss, st.initial_val_loss)
