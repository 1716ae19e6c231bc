"""Encryption at rest: AES-256-GCM files with a small header, keyed by a 0600 key file (PRIVTUNE_KEY_FILE).

File format (version 1), so any tool can tell an encrypted artefact from a plaintext one by its first bytes:

    magic b"PRIVTENC" | version 0x01 | key id (8 ASCII hex) | nonce (12 random bytes) | ciphertext | GCM tag (16)

The whole header is authenticated (GCM associated data): a changed key id, nonce or version fails like a changed
byte of ciphertext. A fresh random nonce per file; a key encrypts far fewer than 2^32 files in practice.
Files keep their names (train.jsonl stays train.jsonl), so manifests and paths do not change; readers use
`read_bytes_maybe_encrypted`. Hashes recorded in manifests/run.json should be of the plaintext
(`sha256_plaintext`, `sha256_dir_plaintext`): they stay the same across keys and rotations.

Plaintext that library code must see (PEFT writing or loading an adapter) lives only inside `private_tmpdir()`:
a 0700 directory on tmpfs (/dev/shm) when available, so it never reaches persistent disk, overwritten and removed
on exit, even on error. PRIVTUNE_PLAINTEXT_DIR picks another parent.

Key rotation: `privtune keygen NEW.key --rotate DIR --old-key OLD.key` (→ `rotate`) re-encrypts every file under
DIR from the old key to the new one, one file at a time, atomically, streaming (no plaintext on disk); files
already under the new key are skipped, so an interrupted rotation is simply run again. Then point
PRIVTUNE_KEY_FILE at the new key and destroy the old one once every directory is rotated.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from privtune import fsio
from privtune.errors import InputError
from privtune.paths import privtune_home

MAGIC = b"PRIVTENC"
VERSION = 1
NONCE_LEN = 12
TAG_LEN = 16
HEADER_LEN = len(MAGIC) + 1 + 8 + NONCE_LEN
CHUNK = 1 << 20
KEY_ENV = "PRIVTUNE_KEY_FILE"


@dataclass(frozen=True)
class Key:
    id: str
    material: bytes = field(repr=False)
    path: str | None = None


def key_from_bytes(material: bytes, path: str | None = None) -> Key:
    if len(material) != 32:
        raise InputError("an AES-256 key must be 32 bytes", where=path)
    return Key(hashlib.sha256(material).hexdigest()[:8], material, path)


# --------------------------------------------------------------------------------------------- key files
def keygen(path: str | Path, *, overwrite: bool = False) -> Key:
    """32 random bytes written as hex, 0600, created exclusively (never silently replaces a key)."""
    path = Path(path).expanduser()
    if path.exists() and not overwrite:
        raise InputError("key file already exists (refusing to overwrite a key: data encrypted with it would be "
                         "lost)", where=str(path))
    if not path.parent.exists():
        fsio.ensure_private_dir(path.parent)
    material = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fsio.FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(material.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if another process created the key meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return key_from_bytes(material, str(path))


def load_key(path: str | Path | None = None) -> Key:
    """The key from `path` or PRIVTUNE_KEY_FILE; missing, unreadable, lax permissions or malformed → InputError."""
    if path is None:
        path = os.environ.get(KEY_ENV)
        if not path:
            raise InputError(f"this artefact is encrypted but no key is configured: set {KEY_ENV}=/path/to/key "
                             "(made by `privtune keygen`)", field=KEY_ENV)
    path = Path(path).expanduser()
    try:
        st = path.stat()
        raw = path.read_bytes().strip()
    except OSError as e:
        raise InputError(f"cannot read the key file ({e.strerror or e})", where=str(path)) from e
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"key file is accessible to other users (mode {stat.S_IMODE(st.st_mode):04o}); run "
                         f"`chmod 600 {path}`", where=str(path))
    if not re.fullmatch(rb"[0-9a-fA-F]{64}", raw):
        raise InputError("not a privtune key file (expected 64 hex characters)", where=str(path))
    return key_from_bytes(bytes.fromhex(raw.decode()), str(path))


def configured_key() -> Key | None:
    """The key when PRIVTUNE_KEY_FILE is set (encryption on), else None (plaintext artefacts)."""
    return load_key() if os.environ.get(KEY_ENV) else None


# --------------------------------------------------------------------------------------------- format
def _header(key: Key, nonce: bytes) -> bytes:
    return MAGIC + bytes([VERSION]) + key.id.encode("ascii") + nonce


def _parse_header(header: bytes, where: str) -> tuple[str, bytes]:
    if len(header) < HEADER_LEN or not header.startswith(MAGIC):
        raise InputError("not a privtune-encrypted file, or its header is truncated", where=where)
    if header[len(MAGIC)] != VERSION:
        raise InputError(f"unsupported encryption format version {header[len(MAGIC)]}", where=where)
    kid = header[len(MAGIC) + 1:len(MAGIC) + 9].decode("ascii", "replace")
    return kid, header[len(MAGIC) + 9:HEADER_LEN]


def _check_key(kid: str, key: Key, where: str) -> None:
    if kid != key.id:
        raise InputError(f"encrypted with key id {kid}, but the key {key.path or ''} has id {key.id}: point "
                         f"{KEY_ENV} at the right key", where=where)


def _tamper(where: str) -> InputError:
    return InputError("decryption failed: the file was modified or truncated (GCM authentication tag mismatch)",
                      where=where)


def is_encrypted(path: str | Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except (IsADirectoryError, FileNotFoundError):
        return False


def is_encrypted_bytes(blob: bytes) -> bool:
    return blob[:len(MAGIC)] == MAGIC


def encrypt_bytes(data: bytes, key: Key) -> bytes:
    nonce = secrets.token_bytes(NONCE_LEN)
    header = _header(key, nonce)
    enc = Cipher(algorithms.AES(key.material), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(header)
    body = enc.update(data) + enc.finalize()
    return header + body + enc.tag


def decrypt_bytes(blob: bytes, key: Key | None = None, *, where: str = "<bytes>") -> bytes:
    kid, nonce = _parse_header(blob[:HEADER_LEN], where)
    key = key or load_key()
    _check_key(kid, key, where)
    if len(blob) < HEADER_LEN + TAG_LEN:
        raise _tamper(where)
    dec = Cipher(algorithms.AES(key.material), modes.GCM(nonce, blob[-TAG_LEN:])).decryptor()
    dec.authenticate_additional_data(blob[:HEADER_LEN])
    try:
        return dec.update(blob[HEADER_LEN:-TAG_LEN]) + dec.finalize()
    except InvalidTag as e:
        raise _tamper(where) from e


def _encrypt_stream(fin: BinaryIO, fout: BinaryIO, key: Key) -> None:
    nonce = secrets.token_bytes(NONCE_LEN)
    header = _header(key, nonce)
    enc = Cipher(algorithms.AES(key.material), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(header)
    fout.write(header)
    while block := fin.read(CHUNK):
        fout.write(enc.update(block))
    fout.write(enc.finalize())
    fout.write(enc.tag)


def _decrypt_stream(path: Path, key: Key | None, sink) -> Key:
    """Feed plaintext chunks to sink(chunk); the tag is checked at the end, so sinks must not trust data before."""
    where = str(path)
    with open(path, "rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        header = fin.read(HEADER_LEN)
        kid, nonce = _parse_header(header, where)
        key = key or load_key()
        _check_key(kid, key, where)
        if size < HEADER_LEN + TAG_LEN:
            raise _tamper(where)
        fin.seek(size - TAG_LEN)
        tag = fin.read(TAG_LEN)
        fin.seek(HEADER_LEN)
        dec = Cipher(algorithms.AES(key.material), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(header)
        remaining = size - HEADER_LEN - TAG_LEN
        while remaining > 0:
            block = fin.read(min(CHUNK, remaining))
            remaining -= len(block)
            sink(dec.update(block))
        try:
            sink(dec.finalize())
        except InvalidTag as e:
            raise _tamper(where) from e
    return key


# --------------------------------------------------------------------------------------------- files
def encrypt_file(src: str | Path, dst: str | Path | None = None, key: Key | None = None) -> Path:
    """Encrypt src into dst (default: in place), atomically; the destination is 0600."""
    src, key = Path(src), key or load_key()
    dst = Path(dst) if dst else src
    if is_encrypted(src):
        raise InputError("already encrypted", where=str(src))
    with open(src, "rb") as fin, fsio.atomic_open(dst, "wb") as fout:
        _encrypt_stream(fin, fout, key)
    return dst


def decrypt_file(src: str | Path, dst: str | Path, key: Key | None = None) -> Path:
    """Decrypt src into dst; on a bad tag dst is never created (the temp file is discarded)."""
    with fsio.atomic_open(dst, "wb") as fout:
        _decrypt_stream(Path(src), key, fout.write)
    return Path(dst)


def read_bytes_maybe_encrypted(path: str | Path, key: Key | None = None) -> bytes:
    """The plaintext of `path`, decrypting when it carries the header (key: given, else PRIVTUNE_KEY_FILE)."""
    path = Path(path)
    blob = path.read_bytes()
    return decrypt_bytes(blob, key, where=str(path)) if is_encrypted_bytes(blob) else blob


def read_text_maybe_encrypted(path: str | Path, key: Key | None = None) -> str:
    return read_bytes_maybe_encrypted(path, key).decode("utf-8")


def write_bytes_maybe_encrypted(path: str | Path, data: bytes, key: Key | None = None) -> Path:
    """Atomic 0600 write; encrypted when a key is given or configured (PRIVTUNE_KEY_FILE), plaintext otherwise."""
    key = key or configured_key()
    return fsio.write_bytes(path, encrypt_bytes(data, key) if key else data)


def write_text_maybe_encrypted(path: str | Path, text: str, key: Key | None = None) -> Path:
    return write_bytes_maybe_encrypted(path, text.encode("utf-8"), key)


def sha256_plaintext(path: str | Path, key: Key | None = None) -> str:
    """sha256 of the file's plaintext (the same value before and after encryption or rotation)."""
    path = Path(path)
    if not is_encrypted(path):
        return fsio.sha256_file(path)
    h = hashlib.sha256()
    _decrypt_stream(path, key, h.update)
    return h.hexdigest()


def sha256_dir_plaintext(path: str | Path, key: Key | None = None) -> str:
    """Like fsio.sha256_dir, over plaintext contents: equal for a directory and its encrypted copy."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_plaintext(f, key).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- directories
SHM_HEADROOM = 512 << 20


def _plaintext_parent(need_bytes: int = 0, in_memory: bool = True) -> Path:
    """tmpfs (never persistent disk) when it has room; containers often cap /dev/shm at 64 MiB."""
    override = os.environ.get("PRIVTUNE_PLAINTEXT_DIR")
    if override:
        return fsio.ensure_private_dir(Path(override).expanduser())
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if in_memory and os.access(shm, os.W_OK | os.X_OK) and shutil.disk_usage(shm).free > need_bytes + SHM_HEADROOM:
            return shm
    return fsio.ensure_private_dir(privtune_home() / "tmp")


def wipe_tree(path: str | Path) -> None:
    """Overwrite every file with zeros, then remove the tree (best effort on copy-on-write filesystems)."""
    path = Path(path)
    if not path.exists():
        return
    for f in path.rglob("*"):
        if f.is_file() and not f.is_symlink():
            with contextlib.suppress(OSError), open(f, "r+b") as fh:
                size = os.fstat(fh.fileno()).st_size
                for _ in range(0, size, CHUNK):
                    fh.write(b"\0" * min(CHUNK, size - fh.tell()))
                fh.flush()
                os.fsync(fh.fileno())
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def private_tmpdir(prefix: str = "privtune-plain-", need_bytes: int = 0, in_memory: bool = True) -> Iterator[Path]:
    """A 0700 scratch dir for plaintext (tmpfs when it has room); wiped on exit, error or not. `in_memory=False`
    puts it under PRIVTUNE_HOME/tmp: for scratch no more sensitive than the plaintext outputs it turns into,
    where tmpfs would only spend RAM (tmpfs pages are memory)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=_plaintext_parent(need_bytes, in_memory)))
    os.chmod(tmp, fsio.DIR_MODE)
    try:
        yield tmp
    finally:
        wipe_tree(tmp)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@contextlib.contextmanager
def decrypted_dir(src: str | Path, key: Key | None = None) -> Iterator[Path]:
    """A plaintext copy of `src` for code that reads files by path (PEFT, tokenizers); wiped on exit.

    A directory without encrypted files is yielded as is (no copy).
    """
    src = Path(src)
    files = _files(src)
    if not any(is_encrypted(f) for f in files):
        yield src
        return
    key = key or load_key()
    with private_tmpdir(need_bytes=sum(f.stat().st_size for f in files)) as tmp:
        for f in files:
            out = tmp / f.relative_to(src)
            fsio.ensure_private_dir(out.parent)
            if is_encrypted(f):
                decrypt_file(f, out, key)
            else:
                shutil.copyfile(f, out)
                os.chmod(out, fsio.FILE_MODE)
        yield tmp


def encrypt_tree_into(src: str | Path, dst: str | Path, key: Key) -> int:
    """Encrypt every file of the plaintext tree `src` into `dst` (same relative names); returns the file count."""
    src, dst = Path(src), Path(dst)
    n = 0
    for f in _files(src):
        out = dst / f.relative_to(src)
        if is_encrypted(f):
            fsio.ensure_private_dir(out.parent)
            shutil.copyfile(f, out)
            os.chmod(out, fsio.FILE_MODE)
        else:
            encrypt_file(f, out, key)
        n += 1
    return n


def encrypt_tree(root: str | Path, key: Key | None = None) -> int:
    """Encrypt, in place, every plaintext file under root; returns how many were encrypted."""
    key = key or load_key()
    n = 0
    for f in _files(Path(root)):
        if not is_encrypted(f):
            encrypt_file(f, f, key)
            n += 1
    return n


@contextlib.contextmanager
def encrypted_output(final: str | Path, key: Key | None = None) -> Iterator[Path]:
    """Yield a dir to write plaintext into (e.g. `model.save_pretrained(tmp)`); on success `final` holds it encrypted.

    With no key given or configured this is plain `fsio.staged_dir(final)`. Either way `final` appears complete
    or not at all, and with a key no plaintext is left anywhere afterwards.
    """
    key = key or configured_key()
    if key is None:
        with fsio.staged_dir(final) as tmp:
            yield tmp
        return
    with private_tmpdir() as plain:
        yield plain
        with fsio.staged_dir(final) as staged:
            encrypt_tree_into(plain, staged, key)


@dataclass
class Rotation:
    rotated: list[str] = field(default_factory=list)
    already_new: list[str] = field(default_factory=list)
    plaintext: list[str] = field(default_factory=list)


def _reencrypt(path: Path, old: Key, new: Key) -> None:
    with fsio.atomic_open(path, "wb") as fout:
        nonce = secrets.token_bytes(NONCE_LEN)
        header = _header(new, nonce)
        enc = Cipher(algorithms.AES(new.material), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(header)
        fout.write(header)
        _decrypt_stream(path, old, lambda chunk: fout.write(enc.update(chunk)))  # tag fails → temp discarded
        fout.write(enc.finalize())
        fout.write(enc.tag)


def key_id_of(path: str | Path) -> str | None:
    with open(path, "rb") as fh:
        header = fh.read(HEADER_LEN)
    return _parse_header(header, str(path))[0] if header.startswith(MAGIC) else None


def rotate(root: str | Path, old_key: Key, new_key: Key) -> Rotation:
    """Re-encrypt every file under root from old_key to new_key; idempotent, so a crashed rotation can be rerun."""
    out = Rotation()
    for f in _files(Path(root)):
        kid = key_id_of(f)
        if kid is None:
            out.plaintext.append(str(f))
        elif kid == new_key.id:
            out.already_new.append(str(f))
        elif kid == old_key.id:
            _reencrypt(f, old_key, new_key)
            out.rotated.append(str(f))
        else:
            raise InputError(f"encrypted with key id {kid}, neither the old key ({old_key.id}) nor the new one "
                             f"({new_key.id})", where=str(f))
    return out


def default_key_path() -> Path:
    return privtune_home() / "keys" / "data.key"


def keygen_cli(path: Path | None, rotate_dirs: list[Path], old_key_path: Path | None) -> Key:
    """`privtune keygen [PATH] [--rotate DIR --old-key OLD]`; key changes go to the audit log (ids, never keys)."""
    from privtune.registry import auditlog

    path = Path(path) if path else default_key_path()
    for d in rotate_dirs:
        if not Path(d).is_dir():
            raise InputError("directory to rotate not found", where=str(d), field="rotate")
    if rotate_dirs and path.exists():
        new = load_key(path)  # resuming an interrupted rotation to an existing new key
    else:
        new = keygen(path)
        auditlog.append("key.create", details={"key_id": new.id, "path": str(path.resolve())})
        print(f"key {new.id} written to {path} (0600). Use it with: export {KEY_ENV}={path.resolve()}")
        print("Back it up somewhere safe: data encrypted with a lost key cannot be recovered.")
    if not rotate_dirs:
        return new
    old = load_key(old_key_path)
    if old.id == new.id:
        raise InputError("the old and new keys are the same key", field="old-key")
    for d in rotate_dirs:
        r = rotate(d, old, new)
        auditlog.append("key.rotate", details={"dir": str(Path(d).resolve()), "old_key_id": old.id,
                                               "new_key_id": new.id, "rotated": len(r.rotated),
                                               "already_new": len(r.already_new), "plaintext": len(r.plaintext)})
        print(f"{d}: {len(r.rotated)} files re-encrypted {old.id} → {new.id} ({len(r.already_new)} already on the "
              f"new key, {len(r.plaintext)} plaintext left as is)")
    print(f"Now set {KEY_ENV}={path.resolve()}; destroy key {old.id} once every directory is rotated.")
    return new
