"""Audit log: the chain verifies, and every kind of tampering is caught and named at the first bad entry."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from privtune.errors import InputError
from privtune.registry import auditlog

H1, H2 = "a" * 64, "b" * 64


@pytest.fixture
def every(monkeypatch):
    def set_every(n: int) -> None:
        monkeypatch.setenv("PRIVTUNE_AUDIT_CHECKPOINT_EVERY", str(n))
    set_every(1000)
    return set_every


def _fill(n: int) -> list[dict]:
    return [auditlog.append("test.step", inputs={"data": H1}, outputs={"out": H2}, details={"i": i})
            for i in range(n)]


def _lines() -> list[str]:
    return auditlog.log_path().read_text().splitlines(keepends=True)


def _write(lines: list[str]) -> None:
    auditlog.log_path().write_text("".join(lines))


def _rehash_from(lines: list[str], start: int) -> list[str]:
    """What a forger without the key does: recompute every hash from line `start` (0-based) onwards."""
    out = lines[:start]
    prev = json.loads(lines[start - 1])["entry_hash"] if start else auditlog.GENESIS
    for raw in lines[start:]:
        e = json.loads(raw)
        e["prev_hash"] = prev
        e["entry_hash"] = auditlog.entry_hash(e)
        prev = e["entry_hash"]
        out.append(json.dumps(e) + "\n")
    return out


def test_append_records_who_when_what_and_verifies(every):
    e = auditlog.append("prepare", inputs={"raw": H1}, outputs={"manifest": H2}, details={"records": 3})
    assert e["seq"] == 1 and e["prev_hash"] == auditlog.GENESIS and e["outcome"] == "ok"
    assert e["pid"] == os.getpid() and e["user"] and e["host"] and e["version"]
    assert e["time"].endswith("Z") and e["entry_hash"] == auditlog.entry_hash(e)
    res = auditlog.verify()
    assert res.ok and res.entries == 1 and res.last_hash == e["entry_hash"], res.summary()
    for p in (auditlog.log_path(), auditlog.key_path(), auditlog.head_path()):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert auditlog.key_path().parent != auditlog.log_path().parent  # the key lives outside the log


def test_inputs_must_be_hashes_never_text(every):
    with pytest.raises(ValueError, match="sha256"):
        auditlog.append("prepare", inputs={"raw": "Anna Smith, anna@example.com"})
    assert not auditlog.log_path().exists() or auditlog.entries() == []


def test_checkpoints_every_n_and_on_demand(every):
    every(5)
    _fill(12)
    cps = [e for e in auditlog.entries() if e["action"] == auditlog.CHECKPOINT_ACTION]
    assert [c["seq"] for c in cps] == [6, 11]  # after every entry whose seq is a multiple of 5
    auditlog.checkpoint()
    res = auditlog.verify()
    assert res.ok and res.checkpoints == 3 and res.last_checkpoint_seq == res.last_seq


def test_edit_is_named(every):
    _fill(8)
    lines = _lines()
    e = json.loads(lines[2])
    e["outcome"] = "error"
    lines[2] = json.dumps(e) + "\n"
    _write(lines)
    res = auditlog.verify()
    assert not res.ok and res.bad_seq == 3 and res.bad_line == 3 and "edited" in res.problem


def test_delete_is_named(every):
    _fill(8)
    lines = _lines()
    del lines[3]
    _write(lines)
    res = auditlog.verify()
    assert not res.ok and res.bad_line == 4 and res.bad_seq == 5 and "deleted" in res.problem


def test_insert_of_a_copy_is_named(every):
    _fill(8)
    lines = _lines()
    lines.insert(3, lines[2])
    _write(lines)
    res = auditlog.verify()
    assert not res.ok and res.bad_line == 4 and res.bad_seq == 3 and "inserted" in res.problem


def test_insert_of_a_well_formed_forgery_is_named(every):
    _fill(8)
    lines = _lines()
    prev = json.loads(lines[2])
    forged = dict(prev, seq=4, action="train", prev_hash=prev["entry_hash"])
    forged["entry_hash"] = auditlog.entry_hash(forged)
    lines.insert(3, json.dumps(forged) + "\n")
    _write(lines)
    res = auditlog.verify()
    # the forgery itself chains correctly; the genuine seq 4 after it cannot
    assert not res.ok and res.bad_line == 5 and res.bad_seq == 4 and "inserted" in res.problem


def test_reorder_is_named(every):
    _fill(8)
    lines = _lines()
    lines[3], lines[4] = lines[4], lines[3]
    _write(lines)
    res = auditlog.verify()
    assert not res.ok and res.bad_line == 4 and res.bad_seq == 5 and "reordered" in res.problem


def test_garbage_line_is_named(every):
    _fill(4)
    lines = _lines()
    lines.insert(2, "hello\n")
    _write(lines)
    res = auditlog.verify()
    assert not res.ok and res.bad_line == 3 and "not valid JSON" in res.problem


def test_rewritten_chain_without_key_fails_at_the_checkpoint(every):
    every(5)
    _fill(12)  # checkpoints at seq 6 and 12
    lines = _lines()
    e = json.loads(lines[1])
    e["details"] = {"i": 999}
    lines[1] = json.dumps(e) + "\n"
    _write(_rehash_from(lines, 1))
    res = auditlog.verify()
    assert not res.ok and res.bad_seq == 6 and "checkpoint HMAC invalid" in res.problem
    assert "start of the log" in res.problem


def test_rewritten_tail_after_last_checkpoint_fails_at_the_head_anchor(every):
    every(5)
    _fill(8)  # checkpoint at seq 6, entries 7..9 after it
    lines = _lines()
    e = json.loads(lines[7])
    e["outcome"] = "error"
    lines[7] = json.dumps(e) + "\n"
    _write(_rehash_from(lines, 7))
    res = auditlog.verify()
    assert not res.ok and "head anchor" in res.problem and "checkpoint seq 6" in res.problem


def test_truncated_tail_is_detected(every):
    every(5)
    _fill(9)
    lines = _lines()
    _write(lines[:-2])
    res = auditlog.verify()
    assert not res.ok and "truncated" in res.problem and res.bad_seq == len(lines) - 1


def test_forged_checkpoint_without_the_key_is_detected(every, tmp_path):
    _fill(3)
    lines = _lines()
    last = json.loads(lines[-1])
    wrong_key = os.urandom(32)
    fake = {"seq": 4, "time": last["time"], "action": auditlog.CHECKPOINT_ACTION, "user": "mallory", "host": "x",
            "pid": 1, "version": "0", "inputs": {}, "outputs": {}, "outcome": "ok",
            "details": {"key_id": auditlog.key_id(auditlog.load_audit_key()), "covers_seq": 3,
                        "hmac": auditlog._mac(wrong_key, "checkpoint", 4, last["entry_hash"])},
            "prev_hash": last["entry_hash"]}
    fake["entry_hash"] = auditlog.entry_hash(fake)
    _write(lines + [json.dumps(fake) + "\n"])
    res = auditlog.verify(check_head=False)
    assert not res.ok and res.bad_seq == 4 and "forged" in res.problem


def test_missing_key_fails_checkpoint_verification(every, tmp_path):
    every(2)
    _fill(3)
    auditlog.key_path().rename(tmp_path / "moved.key")
    res = auditlog.verify()
    assert not res.ok and res.bad_seq == 3 and "not found" in res.problem
    assert auditlog.verify(key_file=tmp_path / "moved.key").ok


def test_torn_last_line_is_tolerated_reported_and_repaired(every):
    _fill(3)
    with open(auditlog.log_path(), "ab") as fh:
        fh.write(b'{"seq": 4, "time": "2026-01-01T0')  # a crash mid-write
    assert len(auditlog.entries()) == 3
    res = auditlog.verify()
    assert res.ok and any("torn" in n for n in res.notes)
    e = auditlog.append("after.crash")
    assert e["seq"] == 5
    actions = [x["action"] for x in auditlog.entries()]
    assert actions[-2:] == [auditlog.REPAIR_ACTION, "after.crash"]
    res = auditlog.verify()
    assert res.ok and res.entries == 5 and not any("torn last line" in n for n in res.notes)
    assert b"2026-01-01T0" in auditlog.log_path().with_name("audit.log.jsonl.torn").read_bytes()


def test_append_after_truncation_records_the_anomaly_in_the_chain(every):
    _fill(5)
    _write(_lines()[:-2])
    auditlog.append("next")  # the chain continues, but carries the evidence
    res = auditlog.verify()
    assert not res.ok and res.bad_seq == 4 and "truncated" in res.problem
    anomaly = [e for e in auditlog.entries() if e["action"] == auditlog.ANOMALY_ACTION][0]
    assert anomaly["details"]["head_seq"] == 5 and anomaly["details"]["log_last_seq"] == 3


def test_head_behind_by_a_crash_is_a_note_not_tampering(every):
    _fill(3)
    head = auditlog.head_path()
    saved = head.read_text()
    auditlog.append("crashed.before.anchor")
    head.write_text(saved)  # as if the process died between the log fsync and the anchor update
    res = auditlog.verify()
    assert res.ok and any("newer than the head anchor" in n for n in res.notes)
    auditlog.append("next")
    assert auditlog.verify().ok
    assert any(e["action"] == auditlog.RECOVERED_ACTION for e in auditlog.entries())


def test_retired_key_still_verifies_old_checkpoints(every):
    every(3)
    _fill(4)
    old = auditlog.load_audit_key()
    auditlog.key_path().rename(auditlog.key_path().with_name(f"audit-hmac-{auditlog.key_id(old)}.key"))
    _fill(4)
    assert auditlog.load_audit_key() != old
    kids = {e["details"]["key_id"] for e in auditlog.entries() if e["action"] == auditlog.CHECKPOINT_ACTION}
    assert len(kids) == 2
    assert auditlog.verify().ok


def test_concurrent_writers_keep_one_chain(every, tmp_path):
    every(25)
    code = ("import sys; from privtune.registry import auditlog\n"
            "for i in range(50): auditlog.append('test.concurrent', details={'w': int(sys.argv[1]), 'i': i})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], env=dict(os.environ)) for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    work = [e for e in auditlog.entries() if e["action"] == "test.concurrent"]
    assert len(work) == 200
    assert {(e["details"]["w"], e["details"]["i"]) for e in work} == {(w, i) for w in range(4) for i in range(50)}
    assert len({e["pid"] for e in work}) == 4
    res = auditlog.verify()
    assert res.ok and res.checkpoints == 8 and res.last_seq == 208, res.summary()


def test_select_by_time_and_action_and_touching(every):
    auditlog.append("prepare", outputs={"manifest": H1})
    auditlog.append("train", inputs={"manifest": H1}, outputs={"adapter": H2})
    auditlog.append("serve.request", inputs={"adapter": H2})
    assert [e["action"] for e in auditlog.select(action="serve.*")] == ["serve.request"]
    assert [e["action"] for e in auditlog.select(action="train")] == ["train"]
    assert auditlog.select(since="2999-01-01") == []
    assert len(auditlog.select(since="2000-01-01T00:00:00")) == 3
    assert [e["action"] for e in auditlog.touching({H2})] == ["train", "serve.request"]
    with pytest.raises(InputError, match="since"):
        auditlog.select(since="yesterday")


def test_verify_cli_raises_input_error_naming_file_and_line(every):
    _fill(4)
    lines = _lines()
    del lines[1]
    _write(lines)
    with pytest.raises(InputError) as ei:
        auditlog.verify_cli()
    assert f"{auditlog.log_path()}:2" in str(ei.value) and "seq 3" in str(ei.value)


def test_unreadable_last_entry_fails_closed(every):
    _fill(2)
    _write(_lines() + ["{oops}\n"])
    with pytest.raises(InputError, match="unreadable"):
        auditlog.append("x")


def test_custom_locations(every, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVTUNE_AUDIT_LOG", str(tmp_path / "logs" / "a.jsonl"))
    monkeypatch.setenv("PRIVTUNE_AUDIT_KEY_FILE", str(tmp_path / "vault" / "audit-hmac.key"))
    _fill(2)
    assert Path(tmp_path / "logs" / "a.jsonl").exists() and (tmp_path / "vault" / "audit-hmac.key").exists()
    assert (tmp_path / "logs" / "a.head.json").exists()
    assert auditlog.verify().ok


def test_torn_line_and_stale_head_together(every):
    _fill(3)
    head = auditlog.head_path()
    saved = head.read_text()
    auditlog.append("crashed.before.anchor")
    head.write_text(saved)
    with open(auditlog.log_path(), "ab") as fh:
        fh.write(b'{"seq": 5, "ti')
    auditlog.append("next")
    res = auditlog.verify()
    assert res.ok, res.summary()
    assert [e["action"] for e in auditlog.entries()][-3:] == [auditlog.REPAIR_ACTION, auditlog.RECOVERED_ACTION, "next"]


def test_recorded_logs_ok_and_error_outcomes(every, tmp_path):
    f = tmp_path / "manifest.json"
    f.write_text("{}")
    with auditlog.recorded("prepare", inputs={"raw": H1}) as rec:
        rec.outputs["manifest"] = auditlog.hash_path(f)
        rec.details["records"] = 3
    assert rec.entry["outcome"] == "ok" and rec.entry["outputs"]["manifest"] == auditlog.hash_path(f)
    with pytest.raises(ZeroDivisionError), auditlog.recorded("train", inputs={"manifest": H1}):
        1 / 0  # noqa: B018
    last = auditlog.entries()[-1]
    assert last["action"] == "train" and last["outcome"] == "error" and last["details"]["error"] == "ZeroDivisionError"
    assert auditlog.hash_path(tmp_path) == auditlog.hash_path(tmp_path)  # directories too
