"""The quickstart pipeline end to end on the real packaged model (slow; CI runs it).

It checks what a user is promised: PII is gone from the prepared data, the tuned model beats the base model
on held-out records by a clear margin, and every artefact and registry row is there.
"""

import json
import re

import pytest
from typer.testing import CliRunner

from privtune.cli import app


def manifest_sha(data):
    from privtune.fsio import sha256_file

    return sha256_file(data / "manifest.json")


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.mark.slow
def test_quickstart_tuned_beats_base_on_held_out_labels(tmp_path, packaged_base, all_threads):
    # the same defaults `make demo` uses (one epoch)
    r = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path / "qs")])
    assert r.exit_code == 0, r.output

    data = tmp_path / "qs" / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["counts"]["train"] + manifest["counts"]["val"] + manifest["counts"]["test"] == 480
    assert manifest["redaction"]["EMAIL_ADDRESS"] > 100
    for split in ("train", "val", "test"):
        assert not EMAIL.search((data / f"{split}.jsonl").read_text()), f"raw email left in {split}"

    (run_dir,) = (tmp_path / "qs" / "runs").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["best_val_loss"] < run["initial_val_loss"]
    report = json.loads((run_dir / "eval" / "quickstart" / "report.json").read_text())
    assert report["n"] == manifest["counts"]["test"] and report["label_task"] is True
    gain = report["tuned"]["accuracy"] - report["base"]["accuracy"]
    assert gain >= 0.20, f"tuned {report['tuned']['accuracy']:.3f} vs base {report['base']['accuracy']:.3f}"

    card = (run_dir / "card.md").read_text()
    assert run["adapter_sha256"] in card and manifest_sha(data) in card

    r = CliRunner().invoke(app, ["runs", "--json"])
    rows = json.loads(r.output)
    assert [row["path"] for row in rows] == [str(run_dir.resolve())]
    assert rows[0]["eval"]["accuracy"] == pytest.approx(report["tuned"]["accuracy"])
