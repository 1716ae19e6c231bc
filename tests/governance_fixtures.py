"""Small fake artefacts (dataset dir, run dir, eval/audit reports) shaped like the real stages' outputs."""

from __future__ import annotations

import json
from pathlib import Path

from privtune import fsio

RECORDS = {
    "train": [
        {"id": "t1", "messages": [{"role": "user", "content": "My card ending 4242 was lost, I am [PERSON]."},
                                  {"role": "assistant", "content": "card_lost"}],
         "metadata": {"category": "card_lost", "customer_id": "C-1001"}},
        {"id": "t2", "messages": [{"role": "user", "content": "Transfer failed twice for Zbigniew Quill."},
                                  {"role": "assistant", "content": "transfer_failed"}],
         "metadata": {"category": "transfer_failed", "customer_id": "C-2002"}},
        {"id": "t3", "messages": [{"role": "user", "content": "Reset my password please."},
                                  {"role": "assistant", "content": "account_access"}],
         "metadata": {"category": "account_access", "customer_id": "C-3003"}},
        {"id": "t4", "messages": [{"role": "user", "content": "Someone used my card, contact [EMAIL_ADDRESS]."},
                                  {"role": "assistant", "content": "fraud_report"}],
         "metadata": {"category": "fraud_report", "customer_id": "C-1001"}},
    ],
    "val": [
        {"id": "v1", "messages": [{"role": "user", "content": "ZBIGNIEW QUILL cannot log in."},
                                  {"role": "assistant", "content": "account_access"}],
         "metadata": {"category": "account_access", "customer_id": "C-2002"}},
        {"id": "v2", "messages": [{"role": "user", "content": "Card lost abroad."},
                                  {"role": "assistant", "content": "card_lost"}],
         "metadata": {"category": "card_lost", "customer_id": "C-4004"}},
    ],
    "test": [
        {"id": "s1", "messages": [{"role": "user", "content": "Transfer stuck."},
                                  {"role": "assistant", "content": "transfer_failed"}],
         "metadata": {"category": "transfer_failed", "customer_id": "C-5005"}},
    ],
}


def make_dataset(root: Path, records: dict | None = None) -> tuple[Path, str]:
    """A prepared dataset dir; returns (dir, manifest sha256 as train records it)."""
    records = records or RECORDS
    root = fsio.ensure_private_dir(root)
    for split, rows in records.items():
        fsio.write_jsonl(root / f"{split}.jsonl", rows)
    fsio.write_jsonl(root / "rejected.jsonl", [{"where": "raw.jsonl:9", "reason": "empty_output", "id": "t9"}])
    sample = records["train"][1:3]  # review.csv and the data card quote a few records, as prepare's do
    (root / "review.csv").write_text("id,category,text\n" + "".join(
        f"{r['id']},{r.get('metadata', {}).get('category', '')},{r['messages'][0]['content']}\n" for r in sample))
    (root / "data_card.md").write_text("# Data card\n\n" + "".join(
        f"Example: {r['messages'][0]['content']}\n" for r in sample[:1]))
    raw_sha = "e" * 64
    manifest = {
        "sources": [{"path": "/raw/tickets.jsonl", "sha256": raw_sha, "records": 9}],
        "counts": {"input": 9, "valid": 8, "rejected": 1, "duplicates": 1, "train": len(records["train"]),
                   "val": len(records["val"]), "test": len(records["test"])},
        "redaction": {"PERSON": 3, "EMAIL_ADDRESS": 1, "PHONE_NUMBER": 0},
        "files": {f"{s}.jsonl": {"sha256": fsio.sha256_file(root / f"{s}.jsonl"), "records": len(r)}
                  for s, r in records.items()},
    }
    fsio.write_json(root / "manifest.json", manifest)
    return root, fsio.sha256_file(root / "manifest.json")


def make_run(run_dir: Path, data_dir: Path, manifest_sha: str, **extra) -> Path:
    run_dir = fsio.ensure_private_dir(run_dir)
    fsio.write_text(run_dir / "adapter" / "adapter_config.json", json.dumps({"r": 8, "lora_alpha": 16}))
    fsio.write_bytes(run_dir / "adapter" / "adapter_model.safetensors", b"\x00fake-weights" * 64)
    run = {
        "status": "finished", "privtune_version": "0.1.0", "method": "lora", "adapter_name": run_dir.name,
        "config": {"method": "lora", "epochs": 3, "learning_rate": 0.0002, "lora": {"r": 8, "alpha": 16}},
        "base": {"name": "SmolLM2-135M-Instruct", "path": "/models/smol", "source": "packaged gguf",
                 "source_sha256": "a" * 64, "weights_sha256": "b" * 64},
        "dataset": {"path": str(data_dir.resolve()), "manifest_sha256": manifest_sha, "n_train": 4, "n_val": 2},
        "best_epoch": 2, "best_val_loss": 0.4321, "initial_val_loss": 2.5,
        "timings": {"load_s": 1.5, "train_s": 30.25, "eval_s": 2.0, "total_s": 33.75},
        "adapter_sha256": fsio.sha256_dir(run_dir / "adapter"), "versions": {"torch": "2.13.0", "peft": "0.21.2"},
        **extra,
    }
    fsio.write_json(run_dir / "run.json", run)
    return run_dir


def make_eval(run_dir: Path, name: str = "default") -> Path:
    run = json.loads((run_dir / "run.json").read_text())
    report = {"n": 20, "name": name, "data": {"path": "/data/test.jsonl", "sha256": "f" * 64},
              "run": {"adapter_sha256": run["adapter_sha256"]},
              "tuned": {"accuracy": 0.85, "macro_f1": 0.8, "rouge_l": 0.9},
              "base": {"accuracy": 0.25, "macro_f1": 0.1, "rouge_l": 0.3},
              "by_category": {"card_lost": {"n": 5, "tuned": {"accuracy": 1.0}},
                              "fraud_report": {"n": 5, "tuned": {"accuracy": 0.6}}}}
    return fsio.write_json(run_dir / "eval" / name / "report.json", report)


def make_audit(run_dir: Path) -> Path:
    return fsio.write_json(run_dir / "audit" / "audit.json", {
        "gates": {"canary_exposure": "pass", "membership_auc": "pass", "pii_regurgitation": "fail"},
        "canary": {"exposure_bits": 3.2}, "membership": {"auc": 0.52}, "regurgitation": {"pii_rate": 0.01}})
