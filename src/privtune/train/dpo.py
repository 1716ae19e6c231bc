"""`privtune train --method dpo`: direct preference optimisation with TRL's DPOTrainer, LoRA on the policy.

Records come from `privtune prepare` as `{"id", "messages": [prompt turns], "chosen", "rejected", "metadata"}`.
The reference model is the base itself (the adapter switched off), so DPO costs one model in memory, not two.
TRL owns the loss and the loop (its DPO implementation is maintained and tested; ours would add nothing);
privtune owns the inputs, the run directory and lineage: the same checks before RUN_DIR exists, the same
run.json / metrics.jsonl / adapter layout as SFT, the best adapter by val loss, registry row and audit entry.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privtune import __version__, fsio
from privtune.config import TrainConfig
from privtune.errors import InputError
from privtune.registry import crypto, hooks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preference:
    id: str
    prompt: tuple[dict[str, str], ...]
    chosen: str
    rejected: str
    where: str


# ------------------------------------------------------------------------------------------ reading
def parse_preference(line: str, where: str) -> Preference:
    from privtune.train.records import ROLES

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", where=where) from None
    if not isinstance(obj, dict):
        raise InputError("a record must be a JSON object", where=where)
    rid = obj.get("id")
    if not isinstance(rid, str | int) or isinstance(rid, bool) or str(rid) == "":
        raise InputError("must be a non-empty string", where=where, field="id")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("must be a non-empty list of prompt turns (a preference record from `privtune prepare`)",
                         where=where, field="messages")
    prompt = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InputError(f"must be {{role: {'|'.join(ROLES)}, content: string}}", where=where,
                             field=f"messages[{i}]")
        prompt.append({"role": m["role"], "content": m["content"]})
    if prompt[-1]["role"] == "assistant":
        raise InputError("the prompt must end with a user turn; the answers are 'chosen' and 'rejected'",
                         where=where, field="messages")
    for key in ("chosen", "rejected"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise InputError("must be a non-empty string (the preferred / dispreferred answer)", where=where,
                             field=key)
    if obj["chosen"] == obj["rejected"]:
        raise InputError("chosen and rejected are the same answer: nothing to prefer", where=where, field="rejected")
    return Preference(str(rid), tuple(prompt), obj["chosen"], obj["rejected"], where)


def read_preferences(path: Path) -> list[Preference]:
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found (run `privtune prepare` on prompt/chosen/rejected records)", where=str(path))
    out = []
    for lineno, raw in enumerate(crypto.read_bytes_maybe_encrypted(path).splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", where=f"{path}:{lineno}") from None
        if line.strip():
            out.append(parse_preference(line, f"{path}:{lineno}"))
    if not out:
        raise InputError("no records", where=str(path))
    return out


def trl_rows(prefs: list[Preference]) -> list[dict[str, Any]]:
    """TRL's conversational preference format: the prompt turns, then one assistant turn per answer."""
    return [{"prompt": list(p.prompt), "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in prefs]


# ------------------------------------------------------------------------------------------ config
def trl_config_kwargs(cfg: TrainConfig, output_dir: Path, cuda: bool) -> dict[str, Any]:
    """DPOConfig arguments from privtune's TrainConfig (pure; nothing leaves the machine, nothing is saved by TRL)."""
    return {
        "output_dir": str(output_dir), "report_to": "none", "push_to_hub": False, "save_strategy": "no",
        "eval_strategy": "epoch", "logging_strategy": "steps", "logging_steps": cfg.log_every,
        "per_device_train_batch_size": cfg.batch_size, "per_device_eval_batch_size": cfg.eval_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum, "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.epochs, "max_steps": cfg.max_steps or -1, "lr_scheduler_type": "cosine",
        "warmup_steps": min(cfg.warmup_ratio, 0.999), "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm, "seed": cfg.seed, "data_seed": cfg.seed,
        "max_length": cfg.max_seq_len, "beta": cfg.dpo.beta, "loss_type": [cfg.dpo.loss_type],
        "label_smoothing": cfg.dpo.label_smoothing, "gradient_checkpointing": cfg.dpo.gradient_checkpointing,
        "bf16": cuda, "use_cpu": not cuda, "dataloader_num_workers": 0, "dataloader_pin_memory": cuda,
        "disable_tqdm": False, "model_init_kwargs": None,
    }


def metrics_row(step: int, epoch: float | None, logs: dict[str, float], tokens_per_s: float | None) -> dict:
    """One metrics.jsonl row in SFT's keys, plus DPO's reward statistics."""
    row = {"step": step, "epoch": round(epoch or 0.0, 4), "train_loss": logs.get("loss"),
           "val_loss": logs.get("eval_loss"), "lr": logs.get("learning_rate"), "tokens_per_s": tokens_per_s}
    for key in ("rewards/accuracies", "rewards/margins", "eval_rewards/accuracies", "eval_rewards/margins",
                "grad_norm"):
        if key in logs:
            row[key.replace("/", "_")] = logs[key]
    return row


# ------------------------------------------------------------------------------------------ recipe
def train(data_dir: Path, out: Path, cfg: TrainConfig) -> dict:
    """DPO-train a LoRA adapter on DATA_DIR's preference records into RUN_DIR=out; returns run.json."""
    import torch

    from privtune.train.sft import check_run_dir

    t_start = time.time()
    data_dir, out = Path(data_dir), Path(out)
    if cfg.method != "dpo":
        raise InputError(f"dpo.train got method '{cfg.method}'", field="method")
    if cfg.dp.enabled:  # TRL's loop has no per-record clipping/noise: refusing beats a silent non-private run
        raise InputError("differential privacy is not available for DPO; use --method lora or dora with "
                         "--dp-epsilon", field="dp")
    check_run_dir(out)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(data_dir, out, cfg, t_start)
    finally:
        torch.set_num_threads(threads)


def _read_dataset(data_dir: Path, cfg: TrainConfig) -> tuple[list[Preference], list[Preference], str]:
    if not data_dir.is_dir() or not (data_dir / "manifest.json").is_file():
        raise InputError("not a prepared dataset (no manifest.json); run `privtune prepare` on prompt/chosen/"
                         "rejected records", where=str(data_dir))
    train = read_preferences(data_dir / "train.jsonl")
    val = read_preferences(data_dir / "val.jsonl")
    if cfg.max_val_records:
        val = val[: cfg.max_val_records]
    return train, val, crypto.sha256_plaintext(data_dir / "manifest.json")


def _train(data_dir: Path, out: Path, cfg: TrainConfig, t_start: float) -> dict:
    import torch
    from datasets import Dataset as HFDataset
    from transformers import TrainerCallback
    from trl import DPOConfig as TrlDPOConfig
    from trl import DPOTrainer

    from privtune.models import load_model, load_tokenizer, resolve_base
    from privtune.train.methods import peft_lora_config
    from privtune.train.sft import (
        _record,
        _versions,
        lora_targets,
        pick_device,
        save_adapter,
        seed_everything,
    )

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    train_prefs, val_prefs, manifest_sha = _read_dataset(data_dir, cfg)
    base = resolve_base(cfg.base)
    tokenizer = load_tokenizer(base)
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the base model has no chat template; DPO on chat prompts needs one", where=base.path)
    model = load_model(base)
    model.config.use_cache = False
    targets = lora_targets(model, cfg.lora.target_modules)
    cuda = device.type == "cuda"

    fsio.ensure_private_dir(out)
    scratch = out / ".trl"  # TRL insists on an output_dir; nothing is saved there (save_strategy "no")
    run: dict[str, Any] = {
        "status": "running", "privtune_version": __version__, "method": "dpo", "artefact": "adapter",
        "adapter_name": out.name, "config": cfg.model_dump(), "base": base.to_dict(),
        "dataset": {"path": str(data_dir.resolve()), "manifest_sha256": manifest_sha,
                    "n_train": len(train_prefs), "n_val": len(val_prefs)},
        "lora_target_modules": targets, "reference": "base model (adapter disabled)", "device": str(device),
        "started_at": started_at, "versions": {**_versions(), "trl": _dist_version("trl")},
    }
    fsio.write_json(out / "run.json", run)
    state = _DPOState()
    try:
        torch.manual_seed(cfg.seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            args = TrlDPOConfig(**trl_config_kwargs(cfg, scratch, cuda))
            trainer = DPOTrainer(model=model, args=args, processing_class=tokenizer,
                                 train_dataset=HFDataset.from_list(trl_rows(train_prefs)),
                                 eval_dataset=HFDataset.from_list(trl_rows(val_prefs)),
                                 peft_config=peft_lora_config(cfg, targets))
        trainer.add_callback(_callback(TrainerCallback, state, out, tokenizer, cfg, save_adapter, t_start))
        load_s = time.time() - t_start
        te = time.time()
        initial = trainer.evaluate()
        state.eval_s += time.time() - te
        state.initial_val_loss = initial["eval_loss"]
        fsio.append_jsonl(out / "metrics.jsonl", metrics_row(0, 0.0, initial, None))
        result = trainer.train()
        state.steps = trainer.state.global_step
        if state.best_val_loss is None or not (out / "adapter").is_dir():
            state.best_val_loss = math.inf if state.best_val_loss is None else state.best_val_loss
            save_adapter(trainer.model, tokenizer, out / "adapter")
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
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    run.update(state.summary())
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    run.update(trainable_params=n_trainable, train_runtime_s=round(result.metrics.get("train_runtime", 0.0), 3),
               timings={"load_s": round(load_s, 3), "train_s": round(state.train_s(), 3),
                        "eval_s": round(state.eval_s, 3), "total_s": round(time.time() - t_start, 3)},
               status="finished", adapter_sha256=crypto.sha256_dir_plaintext(out / "adapter"),
               finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
    fsio.write_json(out / "run.json", run)
    _record(out, run)
    hooks.trained(out, run)
    log.info("DPO: best val loss %.4f at epoch %s (initial %.4f), reward accuracy %s; adapter %s",
             run["best_val_loss"], run["best_epoch"], run["initial_val_loss"], run.get("val_reward_accuracy"),
             out / "adapter")
    return run


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


@dataclass
class _DPOState:
    initial_val_loss: float | None = None
    best_val_loss: float | None = None
    best_epoch: int = 0
    final_val_loss: float | None = None
    val_reward_accuracy: float | None = None
    val_reward_margin: float | None = None
    steps: int = 0
    epochs_run: int = 0
    eval_s: float = 0.0
    started: float = 0.0
    ended: float = 0.0

    def train_s(self) -> float:
        """Wall time of trainer.train(), the per-epoch evals included."""
        return max(self.ended - self.started, 0.0) if self.started else 0.0

    def summary(self) -> dict:
        def num(x):
            return x if isinstance(x, float | int) and math.isfinite(x) else None

        return {"initial_val_loss": num(self.initial_val_loss), "best_val_loss": num(self.best_val_loss),
                "best_epoch": self.best_epoch, "final_val_loss": num(self.final_val_loss),
                "val_reward_accuracy": num(self.val_reward_accuracy), "val_reward_margin": num(self.val_reward_margin),
                "steps": self.steps, "epochs_run": self.epochs_run}


def _callback(base_cls, state: _DPOState, out: Path, tokenizer, cfg: TrainConfig, save_adapter, t_start: float):
    """TrainerCallback that writes metrics.jsonl rows and keeps the adapter with the best val loss."""
    metrics_path = out / "metrics.jsonl"
    window = {"t": 0.0, "tokens": 0}

    class _Recorder(base_cls):
        def on_train_begin(self, args, st, control, **kw):
            state.started = time.time()
            window["t"] = time.time()

        def on_train_end(self, args, st, control, **kw):
            state.ended = time.time()

        def on_evaluate(self, args, st, control, metrics=None, model=None, **kw):
            if not st.global_step or not metrics or "eval_loss" not in metrics:
                return
            state.epochs_run = math.ceil(st.epoch or 0)
            val = metrics["eval_loss"]
            state.final_val_loss = val
            state.val_reward_accuracy = metrics.get("eval_rewards/accuracies")
            state.val_reward_margin = metrics.get("eval_rewards/margins")
            if state.best_val_loss is None or val < state.best_val_loss - cfg.min_delta:
                state.best_val_loss, state.best_epoch = val, state.epochs_run
                save_adapter(model, tokenizer, out / "adapter")

        def on_log(self, args, st, control, logs=None, **kw):
            if not logs or st.global_step == 0 or not ("loss" in logs or "eval_loss" in logs):
                return  # the initial eval is row 0 already; the end-of-training summary is in run.json
            tps = None
            if "num_tokens" in logs:
                now, seen = time.time(), int(logs["num_tokens"])
                tps = round((seen - window["tokens"]) / max(now - window["t"], 1e-9), 2)
                window["t"], window["tokens"] = now, seen
            fsio.append_jsonl(metrics_path, metrics_row(st.global_step, st.epoch, logs, tps))

    return _Recorder()
