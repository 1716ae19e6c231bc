"""With a data key configured, the whole pipeline reads and writes ciphertext at rest and leaves no plaintext copy.

prepare → train → eval → audit → serve (adapter load) → export: every dataset and adapter file on disk is
AES-GCM ciphertext, only metadata made of counts and hashes stays readable, and the decrypted copies PEFT needs
are gone afterwards. Exports are the one deliberate plaintext output.
"""

import json
import os

import pytest
from typer.testing import CliRunner

from privtune.cli import app
from privtune.registry import crypto

NAMES = ["Maria Gonzalez", "Liam O'Brien", "Aiko Tanaka", "Noah Fischer"]
LABELS = ["card_lost", "fraud_report"]
WHEN = ["this morning", "last night", "on Monday", "during lunch", "after work"]
WHERE = ["at the mall", "on the bus", "near the station", "in a taxi", "at the gym", "at school", "in the park",
         "at the airport"]
# files whose content is counts, settings and hashes (never records): allowed in plaintext
METADATA = {"manifest.json", "run.json", "report.json", "report.md", "report.html", "audit.json", "audit.md",
            "data_card.md", "data_card.html", "export.json", "rejected.jsonl", "metrics.jsonl"}  # file:line + reason; losses


def _records(n: int = 40) -> list[dict]:
    rows = []
    for i in range(n):
        label, name = LABELS[i % 2], NAMES[i % 4]
        # distinct after redaction (names and numbers become placeholders): vary the words themselves
        detail = f"{WHEN[i % 5]} {WHERE[(i // 5) % 8]}"
        text = f"I am {name}, account {40000000 + i}. " + (f"I lost my card {detail}." if label == "card_lost"
                                                            else f"Someone used my account {detail}.")
        rows.append({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}],
                     "metadata": {"category": label}})
    return rows


def _plaintext_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in METADATA
                  and p.suffix != ".png" and not crypto.is_encrypted(p))


@pytest.fixture()
def keyed(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "data.key"
    r = CliRunner().invoke(app, ["keygen", str(key)])
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("PRIVTUNE_PLAINTEXT_DIR", str(scratch))  # where PEFT's temporary plaintext copies go
    return scratch


def test_encrypted_pipeline_leaves_no_plaintext(tmp_path, tiny_model_dir, keyed):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(json.dumps(r) for r in _records()) + "\n")
    run_cli = CliRunner().invoke
    data, run = tmp_path / "data", tmp_path / "run"

    r = run_cli(app, ["prepare", str(raw), "--out", str(data), "--base", str(tiny_model_dir), "--min-tokens", "0",
                      "--no-near-dedup"])
    assert r.exit_code == 0, r.output
    r = run_cli(app, ["train", "--data", str(data), "--out", str(run), "--base", str(tiny_model_dir),
                      "--max-steps", "2", "--batch-size", "4", "--threads", "1"])
    assert r.exit_code == 0, r.output
    r = run_cli(app, ["eval", "--run", str(run), "--data", str(data), "--max-records", "4", "--max-new-tokens", "2"])
    assert r.exit_code == 0, r.output
    (tmp_path / "audit.yaml").write_text("canary_candidates: 20\ncontrol_canaries: 1\nmia_max_records: 4\n"
                                         "max_new_tokens: 2\n")
    r = run_cli(app, ["audit", "--run", str(run), "--config", str(tmp_path / "audit.yaml"), "--threads", "1"])
    assert r.exit_code in (0, 3), r.output  # a gate may fail on a 2-step toy run; the reports must be there

    from privtune.serve.loader import load_served

    served = load_served({"support": run})
    assert served.adapters["support"].adapter_sha256 == json.loads((run / "run.json").read_text())["adapter_sha256"]

    r = run_cli(app, ["export", "--run", str(run), "--format", "vllm", "--out", str(tmp_path / "vllm")])
    assert r.exit_code == 0, r.output
    assert not crypto.is_encrypted(tmp_path / "vllm" / "adapters" / "support" / "adapter_config.json")

    for root in (data, run):
        assert _plaintext_files(root) == [], root
    adapter_files = list((run / "adapter").iterdir())
    assert adapter_files and all(crypto.is_encrypted(p) for p in adapter_files)
    train_bytes = (data / "train.jsonl").read_bytes()
    assert crypto.is_encrypted(data / "train.jsonl") and b"card_lost" not in train_bytes
    assert not [p for p in keyed.rglob("*") if p.is_file()], "a decrypted copy was left behind"
    assert os.stat(run / "adapter").st_mode & 0o077 == 0
