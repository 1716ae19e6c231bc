"""Scale paths: worker processes and Ray Data give the same dataset as one process; memory stays bounded."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from data_helpers import ticket, write_jsonl

from privtune.config import PrepareConfig
from privtune.data.prepare import prepare

SPLIT_FILES = ("train.jsonl", "val.jsonl", "test.jsonl", "rejected.jsonl", "review.csv", "subjects.idx.jsonl")


def _tickets(tmp_path, n=24):
    return write_jsonl(tmp_path / "in.jsonl", [ticket(i) for i in range(n)])


def _same_outputs(a, b):
    for name in SPLIT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow  # two worker processes each load spaCy (~10 s)
def test_workers_give_identical_outputs(tmp_path):
    src = _tickets(tmp_path)
    one = prepare([src], tmp_path / "one", PrepareConfig(chunk_records=7))
    two = prepare([src], tmp_path / "two", PrepareConfig(chunk_records=7, redact={"workers": 2}))
    _same_outputs(tmp_path / "one", tmp_path / "two")
    assert one["counts"] == two["counts"] and two["redactor"]["workers"] == 2


@pytest.mark.slow  # starts a local Ray cluster (~30-80 s on 2 cores)
def test_ray_engine_gives_identical_outputs(tmp_path):
    pytest.importorskip("ray", reason="Ray is optional: pip install 'privtune[ray]'")
    src = _tickets(tmp_path, 12)
    local = prepare([src], tmp_path / "local", PrepareConfig())
    ray_m = prepare([src], tmp_path / "ray", PrepareConfig(engine="ray", redact={"workers": 1}))
    _same_outputs(tmp_path / "local", tmp_path / "ray")
    assert local["counts"] == ray_m["counts"] and ray_m["redactor"]["runner"] == "ray"


@pytest.mark.slow  # two full prepares, one in 5 chunks
def test_chunk_size_does_not_change_the_dataset(tmp_path):
    src = _tickets(tmp_path)
    prepare([src], tmp_path / "big", PrepareConfig(chunk_records=4096))
    prepare([src], tmp_path / "small", PrepareConfig(chunk_records=5))
    _same_outputs(tmp_path / "big", tmp_path / "small")


def _scratch_dir(caplog) -> Path:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scratch (spill")]
    assert len(lines) == 1
    return Path(lines[0].split(": ", 1)[1])


def test_spill_is_on_disk_without_a_key_and_in_ram_only_with_one(tmp_path, monkeypatch, caplog):
    """Unencrypted outputs are plaintext on disk anyway, so the spill must not cost RAM as tmpfs; with a key the
    plaintext spill must stay off persistent disk."""
    from privtune.registry import crypto

    monkeypatch.delenv("PRIVTUNE_PLAINTEXT_DIR", raising=False)
    src = _tickets(tmp_path)
    cfg = PrepareConfig(redact={"enabled": False})
    with caplog.at_level(logging.INFO, logger="privtune.data"):
        prepare([src], tmp_path / "plain", cfg)
    assert _scratch_dir(caplog).parent == Path(os.environ["PRIVTUNE_HOME"]) / "tmp"
    assert not _scratch_dir(caplog).exists()  # wiped

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)):
        pytest.skip("no writable /dev/shm here")
    caplog.clear()
    crypto.keygen(tmp_path / "keys" / "data.key")
    monkeypatch.setenv(crypto.KEY_ENV, str(tmp_path / "keys" / "data.key"))
    with caplog.at_level(logging.INFO, logger="privtune.data"):
        prepare([src], tmp_path / "sealed", cfg)
    assert _scratch_dir(caplog).parent == shm
