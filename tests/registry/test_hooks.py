"""Stage hooks: each writes the hashes lineage needs, and the model card finds exactly the run's entries."""

from __future__ import annotations

import json

from tests.governance_fixtures import make_audit, make_dataset, make_eval, make_run

from privtune import fsio
from privtune.card import build, to_markdown
from privtune.registry import auditlog, hooks


def test_pipeline_hooks_link_up_in_the_card(tmp_path):
    data, manifest_sha = make_dataset(tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    e = hooks.prepared(data, manifest)
    assert e["outputs"]["manifest"] == manifest_sha and e["inputs"] == {"source:/raw/tickets.jsonl": "e" * 64}
    assert e["outputs"]["file:train.jsonl"] == fsio.sha256_file(data / "train.jsonl")
    assert e["details"]["counts"]["train"] == 4 and e["details"]["redacted_spans"] == 4

    run_dir = make_run(tmp_path / "run", data, manifest_sha)
    run = json.loads((run_dir / "run.json").read_text())
    e = hooks.trained(run_dir, run)
    assert e["inputs"] == {"dataset_manifest": manifest_sha, "base_weights": "b" * 64}
    assert e["outputs"]["adapter"] == run["adapter_sha256"] and e["outcome"] == "ok"

    report_path = make_eval(run_dir)
    report = json.loads(report_path.read_text())
    e = hooks.evaluated(run_dir, report_path, report)
    assert e["outputs"]["report"] == fsio.sha256_file(report_path) and e["inputs"]["adapter"] == run["adapter_sha256"]
    assert e["details"]["tuned"]["accuracy"] == 0.85

    audit_path = make_audit(run_dir)
    e = hooks.audited(run_dir, audit_path, run["adapter_sha256"], {"pii_regurgitation": "fail"}, passed=False)
    assert e["outcome"] == "gate_failed"
    hooks.exported(run_dir, run_dir / "adapter", "merged", run["adapter_sha256"])
    hooks.serve_started({"tickets": run["adapter_sha256"]}, "127.0.0.1", 8000)
    e = hooks.serve_request("tickets", run["adapter_sha256"], "frontdesk", prompt_tokens=12, completion_tokens=3)
    assert e["details"]["key"] == "frontdesk" and "text" not in json.dumps(e["details"])

    other, other_sha = make_dataset(tmp_path / "other")
    (other / "manifest.json").write_text((other / "manifest.json").read_text() + " ")  # a different dataset
    hooks.prepared(other, json.loads((other / "manifest.json").read_text()))

    md = to_markdown(build(run_dir))
    section7 = md.split("## 7.")[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section7.splitlines() if line.startswith("| ")]
    actions = [r[3] for r in rows if r[0].isdigit()]
    assert actions == ["prepare", "train", "eval", "audit", "export", "serve.start", "serve.request"]
    assert auditlog.verify().ok


def test_failed_run_and_missing_hashes_are_left_out_not_invented(tmp_path):
    run_dir = fsio.ensure_private_dir(tmp_path / "run")
    run = {"status": "failed", "error": "RuntimeError", "dataset": {"manifest_sha256": "1" * 64}, "base": {}}
    fsio.write_json(run_dir / "run.json", run)
    e = hooks.trained(run_dir, run)
    assert e["outcome"] == "failed" and e["inputs"] == {"dataset_manifest": "1" * 64}
    assert set(e["outputs"]) == {"run.json"} and e["details"]["error"] == "RuntimeError"


def test_redacted_hook(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"id": 1, "text": "Anna Smith"}\n')
    out.write_text('{"id": 1, "text": "[PERSON]"}\n')
    e = hooks.redacted(src, out, {"n": 1, "redaction": {"PERSON": 1}})
    assert e["inputs"]["input"] == fsio.sha256_file(src) and "Anna" not in json.dumps(e)
