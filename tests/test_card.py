"""Model card: every Annex IV section, real numbers from the artefacts, 'not available' instead of guesses."""

from __future__ import annotations

import json
import re
import stat

import pytest
from tests.governance_fixtures import make_audit, make_dataset, make_eval, make_run
from typer.testing import CliRunner

from privtune import fsio
from privtune.card import build, to_html, to_markdown, write_card
from privtune.cli import app
from privtune.registry import auditlog, crypto, store

HEADINGS = ["1. General description", "2. Intended purpose and limitations", "3. Development process and data",
            "4. Monitoring, functioning and performance metrics", "5. Risk management", "6. Changes and lineage",
            "7. Standards, records and logs"]


@pytest.fixture
def run(tmp_path):
    data, sha = make_dataset(tmp_path / "data")
    run_dir = make_run(tmp_path / "run-a", data, sha)
    runj = json.loads((run_dir / "run.json").read_text())
    auditlog.append("prepare", inputs={"raw": "e" * 64}, outputs={"manifest": sha})
    auditlog.append("train", inputs={"manifest": sha}, outputs={"adapter": runj["adapter_sha256"]})
    auditlog.append("train", inputs={"manifest": "9" * 64}, outputs={"adapter": "8" * 64})  # another run
    return run_dir


def test_full_card_has_annex_iv_sections_and_the_numbers(run):
    make_eval(run)
    make_audit(run)
    md_path, html_path = write_card(run, intended_use="Route support tickets to queues.",
                                    limitations=["English only", "Not for credit decisions"])
    md = md_path.read_text()
    for h in HEADINGS:
        assert f"## {h}" in md
    assert md.index(HEADINGS[0]) < md.index(HEADINGS[3]) < md.index(HEADINGS[6])
    assert "Route support tickets to queues." in md and "- Not for credit decisions" in md
    runj = json.loads((run / "run.json").read_text())
    assert "b" * 64 in md and "a" * 64 in md  # base weights + source hashes
    assert "| accuracy | 0.25 | 0.85 | +0.6 |" in md  # base vs tuned with delta
    assert "| PERSON | 3 |" in md and "| duplicates | 1 |" in md and "| rejected | 1 |" in md
    assert "| /raw/tickets.jsonl | " + "e" * 64 + " | 9 |" in md
    assert "| pii_regurgitation | fail |" in md
    assert f"| adapter | {run / 'adapter'} | {runj['adapter_sha256']} | verified (re-computed, matches) |" in md
    assert md.count("verified (re-computed, matches)") >= 3  # manifest twice (sections 3 and 6) + adapter
    assert "| lora.r | 8 |" in md and "| train_s | 30.25 |" in md
    assert "Differential privacy: not available." in md
    # audit-log entries touching this run, and only those
    section7 = md.split(HEADINGS[6])[1]
    assert "| prepare | ok |" in section7 and section7.count("| train | ok |") == 1
    assert "audit log OK" in section7
    for p in (md_path, html_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # the card generation is itself logged, by hash
    last = auditlog.entries()[-1]
    assert last["action"] == "card" and last["outputs"]["card.md"] == fsio.sha256_file(md_path)


def test_missing_artefacts_say_not_available(run, tmp_path):
    (run / "run.json").write_text(json.dumps({"config": {}, "dataset": {"path": str(tmp_path / "gone"),
                                                                        "manifest_sha256": "1" * 64}}))
    md = to_markdown(build(run))
    for h in HEADINGS:
        assert h in md
    for phrase in ("Intended purpose (provider's statement): not available",
                   "Evaluation results: not available", "Privacy audit (canary exposure, membership inference, PII "
                   "regurgitation): not available", "Dataset manifest: not available",
                   "PII redaction before training: not available", "| name | not available |"):
        assert phrase in md, phrase
    assert "no hash recorded" in md  # adapter hash absent from run.json


def test_tampered_adapter_and_changed_manifest_are_flagged(run):
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"swapped")
    manifest = json.loads((run.parent / "data" / "manifest.json").read_text())
    manifest["counts"]["train"] = 99
    fsio.write_json(run.parent / "data" / "manifest.json", manifest)
    card = build(run)
    md = to_markdown(card)
    assert md.count("MISMATCH") >= 2
    assert any("manifest changed" in b for b in card.banners)


def test_dp_and_retrain_banner(run):
    runj = json.loads((run / "run.json").read_text())
    runj["dp"] = {"epsilon": 7.5, "delta": 1e-5, "noise_multiplier": 0.9}
    fsio.write_json(run / "run.json", runj)
    fsio.write_json(run / "RETRAIN_REQUIRED.json", {"reason": "erasure on 2026-01-01"})
    card = build(run)
    md = to_markdown(card)
    assert "Differential privacy: used. delta = 1e-05, epsilon = 7.5" in md and "ε = 7.5" in md
    assert card.banners and "RETRAIN REQUIRED" in card.banners[0] and "erasure on 2026-01-01" in md


def test_html_is_self_contained_and_escaped(run):
    runj = json.loads((run / "run.json").read_text())
    runj["adapter_name"] = "<script>alert(1)</script>"
    fsio.write_json(run / "run.json", runj)
    page = to_html(build(run))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "<style>" in page
    assert page.count("<h2>") == 7


def test_card_reads_an_encrypted_run(run, tmp_path, monkeypatch):
    key = crypto.keygen(tmp_path / "k.key")
    monkeypatch.setenv(crypto.KEY_ENV, key.path)
    crypto.encrypt_tree(run / "adapter", key)
    crypto.encrypt_file(run / "run.json", key=key)
    md = to_markdown(build(run))
    assert "| adapter | " in md and md.count("verified (re-computed, matches)") >= 3  # plaintext hash matches


def test_cli_card_and_missing_run_exit_codes(run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["card", str(run), "--intended-use", "triage", "--limitation", "English only"])
    assert res.exit_code == 0, res.output
    assert (run / "card.md").exists() and (run / "card.html").exists()
    res = runner.invoke(app, ["card", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "run.json is missing" in res.output


def test_registry_flag_shows_in_card(run):
    runj = json.loads((run / "run.json").read_text())
    store.record_run(run, runj)
    store.mark_retrain_required([runj["dataset"]["manifest_sha256"]], "erasure")
    assert any("RETRAIN REQUIRED" in b for b in build(run).banners)
