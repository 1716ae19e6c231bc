"""Keys file, rate limiter, `privtune keys` CLI and the output guard, without a model."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from privtune.cli import app
from privtune.config import RedactConfig
from privtune.errors import InputError
from privtune.serve.auth import (
    Authenticator,
    RateLimiter,
    add_key,
    load_keys,
    parse_rate,
    retry_after_header,
    revoke_key,
)
from privtune.serve.guard import MAX_HOLD, OutputGuard, StreamBuffer, _counts, split_ready


def test_parse_rate():
    assert parse_rate("60/min") == (60, 60.0)
    assert parse_rate("5 / s") == (5, 1.0)
    assert parse_rate("1000/hour") == (1000, 3600.0)
    for bad in ("", "60", "0/min", "-1/s", "ten/min", "5/fortnight"):
        with pytest.raises(InputError):
            parse_rate(bad)


def test_keys_file_holds_argon2_hashes_only_and_is_private(tmp_path):
    path = tmp_path / "keys" / "keys.json"
    token = add_key(path, "crm-app", ["support", "legal"], "30/min")
    assert token.startswith("pt-") and len(token) > 40
    text = path.read_text()
    assert token not in text and token.split("-", 2)[2] not in text
    (key,) = load_keys(path)
    assert key.hash.startswith("$argon2id$") and key.adapters == ("support", "legal") and key.role == "client"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(InputError, match="exists"):
        add_key(path, "crm-app", ["support"])
    with pytest.raises(InputError):
        add_key(path, "bad name!", ["support"])
    with pytest.raises(InputError):
        add_key(path, "nobody", [])  # a client key must name its adapters
    with pytest.raises(InputError):
        add_key(path, "x", ["a"], role="root")


def test_authenticator_verifies_caches_and_sees_revocation(tmp_path):
    path = tmp_path / "keys.json"
    token = add_key(path, "app", ["support"])
    other = add_key(path, "other", ["*"], "5/s", role="admin")
    auth = Authenticator(path)
    assert auth.authenticate(token).name == "app"
    assert auth.authenticate(token).name == "app"  # second time from the in-memory cache
    assert auth.authenticate(other).allows("anything") and auth.authenticate(other).may_read_metrics()
    assert auth.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert auth.authenticate("pt-zzzzzzzz-x") is None and auth.authenticate(None) is None
    assert not auth.authenticate(token).may_read_metrics()
    revoke_key(path, "app")
    assert auth.authenticate(token) is None  # the file changed: cache dropped, key gone
    assert [k.name for k in load_keys(path) if k.revoked_at] == ["app"]
    with pytest.raises(InputError):
        revoke_key(path, "app")


def test_bad_keys_file_is_an_input_error(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="keys.json:1"):
        load_keys(path)
    path.write_text(json.dumps({"keys": [{"name": "x"}]}))
    with pytest.raises(InputError, match="keys\\[0\\]"):
        load_keys(path)


def test_rate_limiter_refills_smoothly():
    now = [100.0]
    rl = RateLimiter(clock=lambda: now[0])
    assert [rl.acquire("k", "3/min") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.acquire("k", "3/min")
    assert wait == pytest.approx(20.0) and retry_after_header(wait) == "20"
    now[0] += 20.0
    assert rl.acquire("k", "3/min") == 0.0
    assert rl.acquire("other", "3/min") == 0.0  # buckets are per key


def test_keys_cli_add_list_revoke(tmp_path):
    runner = CliRunner()
    f = tmp_path / "keys.json"
    res = runner.invoke(app, ["keys", "add", "reporting", "--adapters", "support,legal", "--rate", "10/min",
                              "--file", str(f)])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[0]
    assert token.startswith("pt-") and Authenticator(f).authenticate(token).name == "reporting"
    listed = runner.invoke(app, ["keys", "list", "--file", str(f), "--json"])
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert rows[0]["name"] == "reporting" and "hash" not in rows[0] and token not in listed.stdout
    assert runner.invoke(app, ["keys", "add", "x", "--adapters", "a", "--rate", "fast", "--file", str(f)]).exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", "reporting", "--file", str(f)]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "reporting", "--file", str(f)]).exit_code == 2
    assert json.loads(runner.invoke(app, ["keys", "list", "--file", str(f), "--json"]).stdout) == []


# ---------------------------------------------------------------------------------------------- guard
def test_split_ready_releases_whole_sentences_and_lines():
    assert split_ready("Hello Anna. How are") == ("Hello Anna.", " How are")
    assert split_ready("mail anna@example.com") == ("", "mail anna@example.com")  # no boundary yet
    assert split_ready("mail anna@example.com. Then") == ("mail anna@example.com.", " Then")
    assert split_ready("line one\nline") == ("line one\n", "line")
    assert split_ready("tail", final=True) == ("tail", "")
    ready, rest = split_ready("word " * 100)
    assert len(ready) <= MAX_HOLD and ready + rest == "word " * 100


def test_stream_buffer_never_splits_a_detected_value():
    buf = StreamBuffer(guarded=True)
    pieces = [buf.feed(t) for t in ["Call An", "na Smith on +44 20 79", "46 0958. Thanks"]]
    pieces.append(buf.feed("", final=True))
    assert pieces == ["", "", "Call Anna Smith on +44 20 7946 0958.", " Thanks"]
    assert StreamBuffer(guarded=False).feed("raw") == "raw"


def test_counts_accept_the_redactors_shapes():
    assert _counts({"PERSON": 2, "EMAIL_ADDRESS": 1}) == {"PERSON": 2, "EMAIL_ADDRESS": 1}
    assert _counts({"counts": {"PHONE_NUMBER": 1}}) == {"PHONE_NUMBER": 1}
    assert _counts({"spans": [{"entity_type": "PERSON"}, {"entity_type": "PERSON"}]}) == {"PERSON": 2}
    assert _counts("nonsense") == {}


@pytest.mark.slow  # loads Presidio + spaCy (~10 s)
def test_output_guard_with_the_real_redactor():
    from privtune.serve.guard import make_redact_fn

    guard = OutputGuard(make_redact_fn(RedactConfig()))
    (text, counts), (blank, none) = guard.apply(["Write to anna.smith@example.com or call +1 415 555 0100.", "  "])
    assert "anna.smith@example.com" not in text and "555 0100" not in text
    assert counts.get("EMAIL_ADDRESS") == 1 and blank == "  " and none == {}
    assert OutputGuard(None).apply(["anna@example.com"]) == [("anna@example.com", {})]


def test_serve_refuses_an_adapter_flagged_by_an_erasure_unless_forced(tmp_path):
    from privtune.serve.app import check_erasure

    flagged, clean = tmp_path / "flagged", tmp_path / "clean"
    for d in (flagged, clean):
        d.mkdir()
    (flagged / "RETRAIN_REQUIRED.json").write_text(json.dumps({"reason": "subject erased from dataset v3"}))
    res = CliRunner().invoke(app, ["serve", "--adapter", f"bank={flagged}", "--adapter", f"hr={clean}",
                                   "--keys", str(tmp_path / "keys.json")])
    assert res.exit_code == 2 and "'bank' must be retrained" in res.output
    assert "subject erased from dataset v3" in res.output and "--force-retrain-required bank" in res.output
    assert check_erasure({"bank": flagged, "hr": clean}, ["bank"]) == ["bank"]
    assert check_erasure({"hr": clean}) == []
    with pytest.raises(InputError, match="not served"):
        check_erasure({"hr": clean}, ["bank"])

    # a full fine-tune served as its own base (`--base RUN_DIR/model`) is checked the same way
    (flagged / "run.json").write_text("{}")
    (flagged / "model").mkdir()
    res = CliRunner().invoke(app, ["serve", "--base", str(flagged / "model"), "--keys", str(tmp_path / "keys.json")])
    assert res.exit_code == 2 and "'base' must be retrained" in res.output
