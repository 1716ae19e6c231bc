"""End-to-end LoRA SFT on the tiny models: learning, best adapter, early stopping, determinism, artefacts."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pytest
import torch
from train_helpers import fast_config, record, write_dataset
from transformers import AutoTokenizer

from privtune import fsio
from privtune.errors import InputError
from privtune.models import load_model, load_tokenizer, resolve_base
from privtune.registry.store import list_runs
from privtune.train.collate import collate, encode_records
from privtune.train.loss import make_loss_fn
from privtune.train.records import read_records
from privtune.train.sft import METRIC_KEYS, evaluate_loss, train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_learns_and_writes_a_complete_run(learnable_model_dir, label_data, tmp_path):
    out = tmp_path / "run"
    run = train(label_data, out, fast_config(learnable_model_dir, epochs=4, patience=4))

    assert run["best_val_loss"] < 0.25 * run["initial_val_loss"]
    assert run["status"] == "finished" and run["method"] == "lora"
    assert run["epochs_run"] == 4 and run["steps"] == 4 * 8 and not run["stopped_early"]
    assert run["dataset"]["n_train"] == 64 and run["dataset"]["n_val"] == 16
    assert run["dataset"]["manifest_sha256"] == fsio.sha256_file(label_data / "manifest.json")
    assert run["base"]["weights_sha256"] == resolve_base(str(learnable_model_dir)).weights_sha256
    assert run["loss_mode"] == "label_positions"
    assert run["supervised_tokens"] == 4 * 64 * 2  # each answer is one digit + <|im_end|>
    assert run["truncated_records"] == 0
    assert set(run["timings"]) == {"load_s", "train_s", "eval_s", "total_s"}
    assert set(run["versions"]) == {"torch", "transformers", "peft"} and run["config"]["learning_rate"] == 1e-2
    assert json.loads((out / "run.json").read_text()) == json.loads(json.dumps(run))

    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (adapter / "tokenizer_config.json").is_file()
    assert AutoTokenizer.from_pretrained(adapter).chat_template == AutoTokenizer.from_pretrained(
        learnable_model_dir).chat_template  # the adapter dir is self-describing
    assert run["adapter_sha256"] == fsio.sha256_dir(adapter)

    rows = metrics(out)
    assert all(set(METRIC_KEYS) <= set(r) for r in rows)
    assert rows[0]["step"] == 0 and rows[0]["val_loss"] == pytest.approx(run["initial_val_loss"])
    val_rows = [r for r in rows if r["val_loss"] is not None]
    assert [r["step"] for r in val_rows] == [0, 8, 16, 24, 32] and [r["epoch"] for r in val_rows[1:]] == [1, 2, 3, 4]
    assert all(r["tokens_per_s"] > 0 and r["train_loss"] > 0 and r["lr"] > 0 for r in rows[1:])
    assert all(r["all_tokens_per_s"] > 3 * r["tokens_per_s"] for r in rows[1:])  # prompts are most tokens
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # one row per step, in order
    assert min(r["val_loss"] for r in val_rows) == pytest.approx(run["best_val_loss"])

    for p in [out, *out.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    assert [r["path"] for r in list_runs()] == [str(out.resolve())]
    assert list_runs()[0]["best_val_loss"] == pytest.approx(run["best_val_loss"])


def test_best_adapter_is_kept_not_the_last(learnable_model_dir, shifted_data, tmp_path):
    run = train(shifted_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=4, patience=4))
    val_losses = [r["val_loss"] for r in metrics(tmp_path / "run") if r["val_loss"] is not None][1:]
    assert run["best_epoch"] < run["epochs_run"] == 4 and not run["stopped_early"]
    assert run["final_val_loss"] > run["best_val_loss"] == pytest.approx(min(val_losses))
    assert val_losses.index(min(val_losses)) + 1 == run["best_epoch"]

    # reload the exported adapter on a fresh base and recompute the val loss: it is the best one
    from peft import PeftModel

    base = resolve_base(str(learnable_model_dir))
    tok = load_tokenizer(base)
    model = PeftModel.from_pretrained(load_model(base), tmp_path / "run" / "adapter")
    val, _ = encode_records(tok, read_records(shifted_data / "val.jsonl"), 512)
    batch = collate(val[:4], tok.pad_token_id)
    loss_fn, _ = make_loss_fn(model, batch)
    reloaded = evaluate_loss(model, loss_fn, val, 16, tok.pad_token_id, torch.device("cpu"))
    assert reloaded == pytest.approx(run["best_val_loss"], abs=1e-5)


def test_early_stopping_after_patience_bad_epochs(learnable_model_dir, shifted_data, tmp_path):
    run = train(shifted_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=8, patience=2))
    assert run["stopped_early"]
    assert run["epochs_run"] == run["best_epoch"] + 2 < 8
    assert run["steps"] == run["epochs_run"] * 8


def test_min_delta_counts_small_gains_as_no_improvement(learnable_model_dir, label_data, tmp_path):
    run = train(label_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=4, patience=1, min_delta=100.0))
    assert run["best_epoch"] == 1 and run["epochs_run"] == 2 and run["stopped_early"]


def test_same_command_twice_gives_the_same_run(learnable_model_dir, label_data, tmp_path):
    cfg = fast_config(learnable_model_dir, epochs=2)
    a = train(label_data, tmp_path / "a", cfg)
    b = train(label_data, tmp_path / "b", cfg)
    assert abs(a["final_val_loss"] - b["final_val_loss"]) < 1e-4
    assert a["adapter_sha256"] == b["adapter_sha256"]
    c = train(label_data, tmp_path / "c", fast_config(learnable_model_dir, epochs=2, seed=7))
    assert c["adapter_sha256"] != a["adapter_sha256"]


def test_gradient_accumulation_matches_the_larger_batch(learnable_model_dir, label_data, tmp_path):
    """4 x 2 accumulated micro-batches = one batch of 8 (same records per step, loss normalised over all)."""
    common = dict(epochs=1, group_by_length=False, lora={"dropout": 0.0})
    big = train(label_data, tmp_path / "big", fast_config(learnable_model_dir, batch_size=8, **common))
    acc = train(label_data, tmp_path / "acc", fast_config(learnable_model_dir, batch_size=4, grad_accum=2, **common))
    assert big["steps"] == acc["steps"] == 8
    assert acc["final_val_loss"] == pytest.approx(big["final_val_loss"], abs=1e-4)


def test_max_steps_mid_epoch_ends_with_a_val_eval(learnable_model_dir, label_data, tmp_path):
    run = train(label_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=3, max_steps=5, log_every=2))
    rows = metrics(tmp_path / "run")
    assert run["steps"] == 5 and run["epochs_run"] == 1 and not run["stopped_early"]
    assert [r["step"] for r in rows] == [0, 2, 4, 5]
    assert rows[-1]["val_loss"] == pytest.approx(run["final_val_loss"]) and rows[-1]["epoch"] == pytest.approx(5 / 8)
    assert run["best_epoch"] == 1 and (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_truncation_is_counted_and_empty_records_dropped(learnable_model_dir, tmp_path):
    long = record(99, 1, prompt="Transfer failed twice, what happened? " * 40)
    data = write_dataset(tmp_path / "d", [record(i, i % 4) for i in range(16)] + [long],
                         [record(i, i % 4) for i in range(16, 20)])
    run = train(data, tmp_path / "run", fast_config(learnable_model_dir, epochs=1, max_seq_len=64))
    assert run["truncated_records"] == 1 and run["tokenization"]["train"]["dropped"] == 1
    assert run["dataset"]["n_train"] == 16


def test_unknown_lora_targets_are_skipped_and_none_is_an_error(learnable_model_dir, label_data, tmp_path):
    run = train(label_data, tmp_path / "ok", fast_config(learnable_model_dir, epochs=1,
                                                          lora={"target_modules": ["q_proj", "query_key_value"]}))
    assert run["lora_target_modules"] == ["q_proj"]
    with pytest.raises(InputError, match="lora.target_modules"):
        train(label_data, tmp_path / "bad", fast_config(learnable_model_dir, lora={"target_modules": ["qkv"]}))
    assert not (tmp_path / "bad").exists()


def test_refuses_to_overwrite_a_finished_run(learnable_model_dir, label_data, tmp_path):
    out = tmp_path / "run"
    first = train(label_data, out, fast_config(learnable_model_dir, epochs=1))
    before = (out / "run.json").read_bytes()
    with pytest.raises(InputError, match="finished run"):
        train(label_data, out, fast_config(learnable_model_dir, epochs=1))
    assert (out / "run.json").read_bytes() == before and first["status"] == "finished"
    (tmp_path / "empty").mkdir()
    assert train(label_data, tmp_path / "empty", fast_config(learnable_model_dir, epochs=1))["status"] == "finished"


def test_threads_setting_does_not_leak(learnable_model_dir, label_data, tmp_path):
    before = torch.get_num_threads()
    train(label_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=1, num_threads=1))
    assert torch.get_num_threads() == before


def test_failed_run_is_marked_failed(learnable_model_dir, label_data, tmp_path):
    """A loss that diverges stops the run with status 'failed' in run.json instead of a silent bad adapter."""
    with pytest.raises(FloatingPointError):
        train(label_data, tmp_path / "run", fast_config(learnable_model_dir, learning_rate=1e30, epochs=2,
                                                         max_grad_norm=1e30, warmup_ratio=0.0))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed" and run["error"] == "FloatingPointError" and math.isfinite(run["steps"])


def test_audit_log_entry_links_dataset_base_and_adapter(learnable_model_dir, label_data, tmp_path):
    from privtune.registry import auditlog

    run = train(label_data, tmp_path / "run", fast_config(learnable_model_dir, epochs=1))
    entry = [e for e in auditlog.entries() if e["action"] == "train"][-1]
    assert entry["outcome"] == "ok"
    assert entry["inputs"] == {"dataset_manifest": run["dataset"]["manifest_sha256"],
                               "base_weights": run["base"]["weights_sha256"]}
    assert entry["outputs"]["adapter"] == run["adapter_sha256"]
    assert entry["outputs"]["run.json"] == fsio.sha256_file(tmp_path / "run" / "run.json")


def test_encrypted_dataset_and_adapter_at_rest(learnable_model_dir, label_data, tmp_path, monkeypatch):
    """With PRIVTUNE_KEY_FILE: encrypted inputs are read, the adapter is written encrypted, hashes are of plaintext."""
    from privtune.registry import crypto

    plain = train(label_data, tmp_path / "plain", fast_config(learnable_model_dir, epochs=1))
    key_file = tmp_path / "keys" / "data.key"
    crypto.keygen(key_file)
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key_file))
    assert crypto.encrypt_tree(label_data) == 3
    enc = train(label_data, tmp_path / "enc", fast_config(learnable_model_dir, epochs=1))

    adapter_files = [p for p in (tmp_path / "enc" / "adapter").rglob("*") if p.is_file()]
    assert adapter_files and all(crypto.is_encrypted(p) for p in adapter_files)
    assert enc["adapter_sha256"] == plain["adapter_sha256"]
    assert enc["dataset"]["manifest_sha256"] == plain["dataset"]["manifest_sha256"]
    assert enc["final_val_loss"] == pytest.approx(plain["final_val_loss"], abs=1e-6)
