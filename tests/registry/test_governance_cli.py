"""`privtune log show|verify|checkpoint` and `privtune keygen [--rotate]`: output, files and exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from privtune import fsio
from privtune.cli import app
from privtune.registry import auditlog, crypto

runner = CliRunner()


def test_log_show_filters_and_json():
    auditlog.append("prepare", outputs={"manifest": "a" * 64})
    auditlog.append("train", inputs={"manifest": "a" * 64})
    res = runner.invoke(app, ["log", "show", "--action", "train", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["action"] for r in rows] == ["train"] and rows[0]["seq"] == 2
    res = runner.invoke(app, ["log", "show", "--since", "2999-01-01"])
    assert res.exit_code == 0 and "0 entries" in res.output
    res = runner.invoke(app, ["log", "show", "--since", "last tuesday"])
    assert res.exit_code == 2 and "since" in res.output


def test_log_verify_ok_then_tampered_exit_2_naming_the_line():
    for i in range(5):
        auditlog.append("step", details={"i": i})
    res = runner.invoke(app, ["log", "checkpoint"])
    assert res.exit_code == 0 and "checkpoint at seq 6" in res.output
    res = runner.invoke(app, ["log", "verify"])
    assert res.exit_code == 0 and "audit log OK: 6 entries (1 HMAC checkpoints)" in res.output
    path = auditlog.log_path()
    lines = path.read_text().splitlines(keepends=True)
    e = json.loads(lines[2])
    e["details"]["i"] = 42
    lines[2] = json.dumps(e) + "\n"
    path.write_text("".join(lines))
    res = runner.invoke(app, ["log", "verify"])
    assert res.exit_code == 2
    assert f"{path}:3" in res.output and "seq 3" in res.output and "edited" in res.output


def test_log_verify_copy_for_an_auditor(tmp_path):
    for i in range(3):
        auditlog.append("step", details={"i": i})
    auditlog.checkpoint()
    copy = tmp_path / "handed-over.jsonl"
    copy.write_bytes(auditlog.log_path().read_bytes())
    key = tmp_path / "auditor.key"
    key.write_bytes(auditlog.key_path().read_bytes())
    res = runner.invoke(app, ["log", "verify", "--log", str(copy), "--key", str(key), "--no-head"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["log", "verify", "--log", str(copy), "--key", str(key)])
    assert res.exit_code == 2 and "head anchor missing" in res.output


def test_keygen_creates_private_key_and_logs_only_its_id(tmp_path):
    res = runner.invoke(app, ["keygen", str(tmp_path / "k" / "data.key")])
    assert res.exit_code == 0, res.output
    key = crypto.load_key(tmp_path / "k" / "data.key")
    assert stat.S_IMODE(Path(key.path).stat().st_mode) == 0o600
    assert key.id in res.output and "PRIVTUNE_KEY_FILE" in res.output
    log = auditlog.log_path().read_text()
    assert key.id in log and key.material.hex() not in log
    res = runner.invoke(app, ["keygen", str(tmp_path / "k" / "data.key")])
    assert res.exit_code == 2 and "already exists" in res.output


def test_keygen_default_location():
    res = runner.invoke(app, ["keygen"])
    assert res.exit_code == 0 and crypto.default_key_path().is_file()


def test_keygen_rotate(tmp_path, monkeypatch):
    old = crypto.keygen(tmp_path / "old.key")
    data = tmp_path / "data"
    fsio.write_text(data / "train.jsonl", '{"id": "1"}\n')
    fsio.write_text(data / "sub" / "val.jsonl", '{"id": "2"}\n')
    crypto.encrypt_tree(data, old)
    monkeypatch.setenv(crypto.KEY_ENV, old.path)
    res = runner.invoke(app, ["keygen", str(tmp_path / "new.key"), "--rotate", str(data)])
    assert res.exit_code == 0, res.output
    new = crypto.load_key(tmp_path / "new.key")
    assert "2 files re-encrypted" in res.output
    assert crypto.key_id_of(data / "train.jsonl") == new.id == crypto.key_id_of(data / "sub" / "val.jsonl")
    assert crypto.read_text_maybe_encrypted(data / "train.jsonl", new) == '{"id": "1"}\n'
    # rerun after an interruption: the new key exists, everything is already on it
    res = runner.invoke(app, ["keygen", str(tmp_path / "new.key"), "--rotate", str(data), "--old-key", old.path])
    assert res.exit_code == 0 and "0 files re-encrypted" in res.output and "2 already on the new key" in res.output
    rot = auditlog.select(action="key.rotate")
    assert len(rot) == 2 and rot[0]["details"]["old_key_id"] == old.id and rot[0]["details"]["rotated"] == 2
    res = runner.invoke(app, ["keygen", str(tmp_path / "new.key"), "--rotate", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not found" in res.output
