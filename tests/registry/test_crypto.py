"""Encryption at rest: roundtrips, tamper and wrong-key errors, permissions, no plaintext left behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from privtune import fsio
from privtune.errors import InputError
from privtune.registry import crypto

SECRET = b'{"id": "r1", "messages": [{"role": "user", "content": "Anna Smith, IBAN DE89370400440532013000"}]}\n'


@pytest.fixture
def key(tmp_path, monkeypatch) -> crypto.Key:
    k = crypto.keygen(tmp_path / "keys" / "data.key")
    monkeypatch.setenv(crypto.KEY_ENV, k.path)
    return k


@pytest.fixture
def plain_parent(tmp_path, monkeypatch) -> Path:
    """Route plaintext scratch dirs to a dir we can inspect."""
    p = tmp_path / "scratch"
    monkeypatch.setenv("PRIVTUNE_PLAINTEXT_DIR", str(p))
    return p


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_keygen_is_private_and_never_overwrites(tmp_path):
    k = crypto.keygen(tmp_path / "k" / "a.key")
    p = Path(k.path)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert len(k.material) == 32 and len(k.id) == 8 and k.material.hex() not in repr(k)
    assert crypto.load_key(p) == k
    with pytest.raises(InputError, match="already exists"):
        crypto.keygen(p)
    assert crypto.load_key(p) == k
    assert crypto.keygen(p, overwrite=True) != k
    assert crypto.keygen(tmp_path / "k" / "b.key").id != k.id


def test_load_key_errors_are_one_line_input_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    with pytest.raises(InputError, match=crypto.KEY_ENV):
        crypto.load_key()
    assert crypto.configured_key() is None
    with pytest.raises(InputError, match="cannot read"):
        crypto.load_key(tmp_path / "missing.key")
    k = crypto.keygen(tmp_path / "lax.key")
    os.chmod(k.path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        crypto.load_key(k.path)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(InputError, match="64 hex"):
        crypto.load_key(bad)


def test_bytes_roundtrip_header_and_random_nonce(key):
    a, b = crypto.encrypt_bytes(SECRET, key), crypto.encrypt_bytes(SECRET, key)
    assert a != b and a.startswith(crypto.MAGIC) and a[len(crypto.MAGIC)] == 1
    assert a[len(crypto.MAGIC) + 1:len(crypto.MAGIC) + 9] == key.id.encode()
    assert len(a) == crypto.HEADER_LEN + len(SECRET) + crypto.TAG_LEN and SECRET not in a
    assert crypto.decrypt_bytes(a, key) == SECRET
    assert crypto.decrypt_bytes(crypto.encrypt_bytes(b"", key), key) == b""


@pytest.mark.parametrize("where", ["ciphertext", "tag", "nonce", "key_id", "truncated"])
def test_tampering_is_an_input_error(key, tmp_path, where):
    blob = bytearray(crypto.encrypt_bytes(SECRET, key))
    if where == "ciphertext":
        blob[crypto.HEADER_LEN + 5] ^= 1
    elif where == "tag":
        blob[-1] ^= 1
    elif where == "nonce":
        blob[crypto.HEADER_LEN - 1] ^= 1
    elif where == "key_id":
        blob[len(crypto.MAGIC) + 1:len(crypto.MAGIC) + 9] = b"deadbeef"
    else:
        blob = blob[:-5]
    f = tmp_path / "train.jsonl"
    f.write_bytes(bytes(blob))
    with pytest.raises(InputError) as ei:
        crypto.read_bytes_maybe_encrypted(f)
    assert str(f) in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(InputError):
        crypto.decrypt_file(f, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_wrong_key_names_both_key_ids(key, tmp_path):
    f = crypto.encrypt_file(_plain(tmp_path / "a.jsonl"), key=key)
    other = crypto.keygen(tmp_path / "other.key")
    with pytest.raises(InputError) as ei:
        crypto.read_bytes_maybe_encrypted(f, other)
    assert key.id in str(ei.value) and other.id in str(ei.value)


def test_wrong_key_via_cli_exits_2_with_one_line(key, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from privtune.cli import app

    run = tmp_path / "run"
    fsio.write_json(run / "run.json", {"config": {}})
    crypto.encrypt_tree(run, key)
    monkeypatch.setenv(crypto.KEY_ENV, crypto.keygen(tmp_path / "other.key").path)
    res = CliRunner().invoke(app, ["card", str(run)])
    assert res.exit_code == 2, res.output
    assert "key id" in res.output and len(res.output.strip().splitlines()) == 1


def _plain(path: Path, data: bytes = SECRET) -> Path:
    fsio.write_bytes(path, data)
    return path


def test_file_roundtrip_in_place_and_perms(key, tmp_path):
    f = _plain(tmp_path / "d" / "train.jsonl")
    os.chmod(f, 0o644)
    crypto.encrypt_file(f)
    assert crypto.is_encrypted(f) and SECRET not in f.read_bytes()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert crypto.read_bytes_maybe_encrypted(f) == SECRET
    assert crypto.read_bytes_maybe_encrypted(_plain(tmp_path / "p.txt")) == SECRET  # plaintext passes through
    with pytest.raises(InputError, match="already encrypted"):
        crypto.encrypt_file(f)
    out = crypto.decrypt_file(f, tmp_path / "plain.jsonl")
    assert out.read_bytes() == SECRET and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_large_file_streams(key, tmp_path, monkeypatch):
    monkeypatch.setattr(crypto, "CHUNK", 1000)  # many chunks without a large file
    data = os.urandom(10_500)
    f = crypto.encrypt_file(_plain(tmp_path / "w.bin", data))
    assert crypto.read_bytes_maybe_encrypted(f) == data
    assert crypto.sha256_plaintext(f) == fsio.sha256_file(_plain(tmp_path / "x.bin", data))


def test_write_maybe_encrypted_follows_configuration(key, tmp_path, monkeypatch):
    f = crypto.write_text_maybe_encrypted(tmp_path / "m.json", json.dumps({"a": 1}))
    assert crypto.is_encrypted(f) and json.loads(crypto.read_text_maybe_encrypted(f)) == {"a": 1}
    monkeypatch.delenv(crypto.KEY_ENV)
    g = crypto.write_text_maybe_encrypted(tmp_path / "n.json", "{}")
    assert not crypto.is_encrypted(g) and g.read_text() == "{}"


def _adapter(root: Path) -> Path:
    _plain(root / "adapter_config.json", b'{"r": 8}')
    _plain(root / "adapter_model.safetensors", os.urandom(4096) + SECRET)
    _plain(root / "tok" / "tokenizer.json", b"{}")
    return root


def test_encrypted_output_leaves_only_ciphertext(key, tmp_path, plain_parent):
    final = tmp_path / "run" / "adapter"
    with crypto.encrypted_output(final) as tmp:
        assert tmp.parent == plain_parent and stat.S_IMODE(tmp.stat().st_mode) == 0o700
        _adapter(tmp)
        plain_hash = crypto.sha256_dir_plaintext(tmp)
    assert not list(plain_parent.iterdir())  # plaintext scratch wiped
    files = sorted(p.relative_to(final).as_posix() for p in final.rglob("*") if p.is_file())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "tok/tokenizer.json"]
    assert all(crypto.is_encrypted(final / f) for f in files)
    assert SECRET not in _all_bytes(tmp_path) and b'"r": 8' not in _all_bytes(tmp_path)
    assert crypto.sha256_dir_plaintext(final) == plain_hash != fsio.sha256_dir(final)


def test_encrypted_output_on_error_leaves_nothing(key, tmp_path, plain_parent):
    final = tmp_path / "run" / "adapter"
    with pytest.raises(RuntimeError), crypto.encrypted_output(final) as tmp:
        _adapter(tmp)
        raise RuntimeError("training crashed")
    assert not final.exists() and not list(plain_parent.iterdir())
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").iterdir())


def test_encrypted_output_without_key_is_a_staged_plain_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    final = tmp_path / "adapter"
    with crypto.encrypted_output(final) as tmp:
        _adapter(tmp)
    assert (final / "adapter_config.json").read_bytes() == b'{"r": 8}'


def test_decrypted_dir_is_private_and_wiped(key, tmp_path, plain_parent):
    src = _adapter(tmp_path / "adapter")
    plain_hash = fsio.sha256_dir(src)
    crypto.encrypt_tree(src)
    with crypto.decrypted_dir(src) as d:
        assert d != src and fsio.sha256_dir(d) == plain_hash
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in d.rglob("*") if p.is_file())
        seen = d
    assert not seen.exists() and not list(plain_parent.iterdir())
    with pytest.raises(KeyError), crypto.decrypted_dir(src) as d:
        seen = d
        raise KeyError("eval crashed")
    assert not seen.exists()
    assert SECRET not in _all_bytes(tmp_path)


def test_decrypted_dir_of_plain_dir_is_the_dir_itself(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    src = _adapter(tmp_path / "adapter")
    with crypto.decrypted_dir(src) as d:
        assert d == src
    assert src.exists()


def test_decrypted_dir_with_tampered_file_fails_and_wipes(key, tmp_path, plain_parent):
    src = _adapter(tmp_path / "adapter")
    crypto.encrypt_tree(src)
    f = src / "adapter_model.safetensors"
    blob = bytearray(f.read_bytes())
    blob[100] ^= 1
    f.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="modified"), crypto.decrypted_dir(src):
        pass
    assert not list(plain_parent.iterdir())


def test_rotate_reencrypts_and_is_idempotent(key, tmp_path):
    root = _adapter(tmp_path / "data")
    plain_hash = fsio.sha256_dir(root)
    assert crypto.encrypt_tree(root) == 3
    (root / "notes.txt").write_text("plain")
    new = crypto.keygen(tmp_path / "new.key")
    r = crypto.rotate(root, key, new)
    assert len(r.rotated) == 3 and r.plaintext == [str(root / "notes.txt")] and not r.already_new
    assert {crypto.key_id_of(root / "adapter_config.json"), crypto.key_id_of(root / "tok" / "tokenizer.json")} == {
        new.id}
    with pytest.raises(InputError, match="key id"):
        crypto.read_bytes_maybe_encrypted(root / "adapter_config.json", key)
    r2 = crypto.rotate(root, key, new)
    assert not r2.rotated and len(r2.already_new) == 3
    (root / "notes.txt").unlink()
    assert crypto.sha256_dir_plaintext(root, new) == plain_hash
    stranger = crypto.keygen(tmp_path / "s.key")
    crypto.encrypt_file(_plain(root / "x.bin"), key=stranger)
    with pytest.raises(InputError, match="neither"):
        crypto.rotate(root, key, new)
