"""prepare, train, eval and redact run with the egress guard strict and never attempt an outbound connection.

Vanilla Presidio's email recognizer pulls the public-suffix list through tldextract at run time; the records
here carry URLs and emails so those code paths run.
"""

import json
import socket

import pytest
from typer.testing import CliRunner

from privtune import offline
from privtune.cli import app
from privtune.errors import EgressBlocked

LABELS = ["card_lost", "fraud_report"]


def _records(n: int = 40) -> list[dict]:
    rows = []
    for i in range(n):
        label = LABELS[i % 2]
        text = (f"Hi, I am Maria Gonzalez{i}, email maria.g{i}@example.org, see https://portal.example-bank.com/t/{i} "
                f"and www.example.net. " + ("I lost my card yesterday." if label == "card_lost"
                                            else "Someone used my account without permission."))
        rows.append({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}],
                     "metadata": {"category": label}})
    return rows


@pytest.fixture()
def strict_guard():
    offline.install_egress_guard(strict=True)
    offline.reset_attempts()
    yield
    offline.reset_attempts()


def test_pipeline_makes_no_outbound_connection(tmp_path, tiny_model_dir, strict_guard):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(json.dumps(r) for r in _records()) + "\n")
    runner = CliRunner()

    r = runner.invoke(app, ["prepare", str(raw), "--out", str(tmp_path / "data")])
    assert r.exit_code == 0, r.output
    train_text = (tmp_path / "data" / "train.jsonl").read_text()
    assert "maria.g" not in train_text and "[EMAIL_ADDRESS]" in train_text

    r = runner.invoke(app, ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                            "--base", str(tiny_model_dir), "--max-steps", "3", "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "adapter").is_dir()

    r = runner.invoke(app, ["eval", "--run", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--baseline",
                            "--max-records", "4"])
    assert r.exit_code == 0, r.output

    src = tmp_path / "texts.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "Mail john.doe@example.com or visit https://example.co.uk/x"}) + "\n")
    r = runner.invoke(app, ["redact", str(src), "--out", str(tmp_path / "red.jsonl")])
    assert r.exit_code == 0, r.output
    assert "john.doe@example.com" not in (tmp_path / "red.jsonl").read_text()

    assert offline.blocked_attempts() == []
    # and the guard was really armed during the run: a real outbound attempt is refused and recorded
    with pytest.raises(EgressBlocked):
        socket.create_connection(("203.0.113.9", 443), timeout=1)
    assert offline.blocked_attempts() == ["203.0.113.9:443"]
