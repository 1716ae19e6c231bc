"""A real PostgreSQL server for the registry tests, started from the system's binaries in a temp dir.

Debian's `postgresql` package puts initdb/pg_ctl in /usr/lib/postgresql/<major>/bin. The server listens on
127.0.0.1 only, on a free port, with a random password (scram-sha-256); it runs as the `postgres` OS user when
the tests run as root (PostgreSQL refuses to run as root). Without the binaries or psycopg the PostgreSQL
variants are skipped with the reason; the SQLite variants always run.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL_HINT = "install it with `apt-get update && apt-get install -y postgresql`"


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scratch_parent() -> Path:
    """A temp parent the `postgres` user can traverse (a 0700 /tmp would hide the data dir from it)."""
    for cand in (tempfile.gettempdir(), "/var/tmp", "/dev/shm"):
        p = Path(cand)
        if p.is_dir() and p.stat().st_mode & stat.S_IXOTH and os.access(p, os.W_OK):
            return p
    pytest.skip("no temp directory the postgres user can enter (is /tmp mode 0700? it should be 1777)")


class _Server:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="privtune-pg-", dir=_scratch_parent() if os.geteuid() == 0 else None))
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL tests run as root need the `postgres` OS user; " + INSTALL_HINT)
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.password = secrets.token_hex(16)
        self.port = _free_port()
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        kw = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user else {}
        res = subprocess.run(list(args), capture_output=True, text=True, cwd=self.root, timeout=120, **kw)
        if res.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({res.returncode}): {res.stderr.strip()[-500:]}")

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.user:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "privtune", f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions")
        pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://privtune:{self.password}@127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def pg_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]'); PostgreSQL registry tests skipped")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")
    server = _Server(bindir)
    try:
        server.start()
    except Exception as e:  # noqa: BLE001
        server.stop()
        pytest.skip(f"could not start a local PostgreSQL server: {e}")
    yield server
    server.stop()


_db_numbers = itertools.count()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server for each test."""
    import psycopg

    name = f"t{next(_db_numbers)}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db(request, monkeypatch) -> str:
    """Run the test once against the default SQLite registry and once against a real PostgreSQL."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("PRIVTUNE_DB", url)
        return url
    monkeypatch.delenv("PRIVTUNE_DB", raising=False)
    from privtune.paths import registry_url

    return registry_url()
