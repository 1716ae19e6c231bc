"""Embedded registry of datasets, runs and evals (SQLite under PRIVTUNE_HOME, or PRIVTUNE_DB=<SQLAlchemy URL>).

Rows hold hashes and lineage, never record text: the registry may be shared with a team. A team points
PRIVTUNE_DB at one PostgreSQL (`postgresql+psycopg://user:password@host:5432/privtune`).

The schema is owned by Alembic (registry/migrations/): the first engine a process opens for a URL brings the
database to the newest revision, under a lock (a file lock for SQLite, an advisory lock for PostgreSQL). A new,
empty database gets the models' schema in one go and is stamped at head (faster than replaying every
revision); an existing one is upgraded revision by revision; one created before migrations existed (tables, no
alembic_version) is stamped at 0001 and upgraded from there. New schema change: add the column to the model
below plus a hand-checked script in migrations/versions/ (tests replay all migrations on SQLite and PostgreSQL
and compare the result with these models).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from privtune import fsio
from privtune.paths import privtune_home, registry_url


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    manifest_sha256: Mapped[str] = mapped_column(String(64), index=True)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # manifest sha256 (erasure)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    adapter_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    method: Mapped[str] = mapped_column(String(32))
    base_name: Mapped[str] = mapped_column(String(256))
    base_sha256: Mapped[str] = mapped_column(String(64))
    dataset_manifest_sha256: Mapped[str] = mapped_column(String(64), index=True)
    adapter_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="finished")
    status_reason: Mapped[str | None] = mapped_column(String(512), nullable=True)
    best_val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Eval(Base):
    __tablename__ = "evals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(256))
    path: Mapped[str] = mapped_column(String(1024))
    report_sha256: Mapped[str] = mapped_column(String(64))
    tuned: Mapped[dict] = mapped_column(JSON, default=dict)
    base: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


RETRAIN_REQUIRED = "retrain_required"
MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x70726976  # any constant shared by every privtune process


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection) -> None:
    """Bring the schema to head; stamp a pre-migration registry (tables but no version) at 0001 first."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    if current == ScriptDirectory.from_config(cfg).get_current_head():
        return
    if current is None and not inspect(connection).has_table("runs"):
        Base.metadata.create_all(connection)  # a new registry: build the head schema at once (Alembic cookbook)
        command.stamp(cfg, "head")
        return
    if current is None:
        command.stamp(cfg, "0001")
    command.upgrade(cfg, "head")


def migrate(engine) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines mean nothing to a privtune user
    if engine.dialect.name == "sqlite":
        from filelock import FileLock

        db = engine.url.database
        lock = Path(db).with_name(Path(db).name + ".migrate.lock") if db and db != ":memory:" else None
        with FileLock(str(lock), mode=fsio.FILE_MODE) if lock else contextlib.nullcontext(), engine.begin() as conn:
            _upgrade(conn)
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        _upgrade(conn)


@lru_cache(maxsize=4)
def _engine(url: str):
    if url.startswith("sqlite:///"):
        fsio.ensure_private_dir(privtune_home())
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    migrate(engine)
    if url.startswith("sqlite:///") and (db := Path(engine.url.database or "")).is_file():
        db.chmod(fsio.FILE_MODE)
    return engine


def session() -> Session:
    return Session(_engine(registry_url()), expire_on_commit=False)


def record_dataset(path: str | Path, manifest: dict, manifest_sha256: str) -> int:
    with session() as s, s.begin():
        row = Dataset(path=str(Path(path).resolve()), manifest_sha256=manifest_sha256,
                      counts=manifest.get("counts", {}), sources=[
                          {"path": src.get("path"), "sha256": src.get("sha256")} for src in manifest.get("sources", [])
                      ])
        s.add(row)
    return row.id


def record_run(run_dir: str | Path, run: dict) -> int:
    """Insert or update the run at run_dir from its run.json contents."""
    path = str(Path(run_dir).resolve())
    with session() as s, s.begin():
        row = s.scalar(select(Run).where(Run.path == path)) or Run(path=path)
        row.adapter_name = run.get("adapter_name")
        row.method = run.get("method", run.get("config", {}).get("method", "lora"))
        row.base_name = run.get("base", {}).get("name", "?")
        row.base_sha256 = run.get("base", {}).get("weights_sha256", "")
        row.adapter_sha256 = run.get("adapter_sha256")
        dataset_sha = run.get("dataset", {}).get("manifest_sha256", "")
        if row.status != RETRAIN_REQUIRED or row.dataset_manifest_sha256 != dataset_sha or row.id is None:
            row.status = run.get("status", "finished")  # an erasure flag survives re-recording the same run
        row.dataset_manifest_sha256 = dataset_sha
        row.best_val_loss = run.get("best_val_loss")
        row.best_epoch = run.get("best_epoch")
        row.config = run.get("config", {})
        s.add(row)
    return row.id


def record_eval(run_dir: str | Path, name: str, report_path: str | Path, report: dict) -> int:
    path = str(Path(run_dir).resolve())
    with session() as s, s.begin():
        run = s.scalar(select(Run).where(Run.path == path))
        row = Eval(run_id=run.id if run else None, name=name, path=str(Path(report_path).resolve()),
                   report_sha256=fsio.sha256_file(report_path), tuned=report.get("tuned", {}),
                   base=report.get("base"))
        s.add(row)
    return row.id


def list_runs() -> list[dict[str, Any]]:
    with session() as s:
        out = []
        for run in s.scalars(select(Run).order_by(Run.created_at)):
            last_eval = s.scalars(select(Eval).where(Eval.run_id == run.id).order_by(Eval.id.desc())).first()
            out.append({
                "id": run.id, "path": run.path, "adapter_name": run.adapter_name, "method": run.method,
                "base": run.base_name, "base_sha256": run.base_sha256[:12],
                "dataset_sha256": run.dataset_manifest_sha256[:12], "status": run.status,
                "best_val_loss": run.best_val_loss, "best_epoch": run.best_epoch,
                "eval": last_eval.tuned if last_eval else None,
                "eval_base": last_eval.base if last_eval else None,
                "created_at": run.created_at.isoformat(timespec="seconds"),
            })
        return out


def print_runs(as_json: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = list_runs()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"privtune runs ({registry_url().split('://')[0]}), grouped by base and adapter name")
    for col in ("id", "adapter", "method", "base", "data", "best val loss", "eval (tuned)", "created", "path"):
        table.add_column(col)
    previous = None
    for r in group_runs(rows):
        group = (r["base_sha256"], r["adapter_name"])
        if previous is not None and group != previous:
            table.add_section()  # adapters of one base (e.g. one per department) sit together, newest last
        previous = group
        scores = r["eval"] or {}
        shown = ", ".join(f"{k}={v:.3f}" for k, v in scores.items() if k in ("accuracy", "macro_f1", "rouge_l",
                                                                           "token_f1") and v is not None)
        table.add_row(str(r["id"]), r["adapter_name"] or "-", r["method"], f"{r['base']} ({r['base_sha256']})",
                      r["dataset_sha256"], "-" if r["best_val_loss"] is None else f"{r['best_val_loss']:.4f}",
                      shown or "-", r["created_at"], r["path"])
    Console().print(table)


def group_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs ordered by base model, then adapter name, then creation: the versions of each named adapter together."""
    return sorted(rows, key=lambda r: (r["base"], r["base_sha256"], r["adapter_name"] or "", r["created_at"], r["id"]))


def _run_row(run: Run) -> dict[str, Any]:
    return {"id": run.id, "path": run.path, "adapter_name": run.adapter_name, "adapter_sha256": run.adapter_sha256,
            "dataset_manifest_sha256": run.dataset_manifest_sha256, "status": run.status,
            "status_reason": run.status_reason}


def runs_trained_on(manifest_sha256s: Iterable[str]) -> list[dict[str, Any]]:
    """Every registered run whose dataset manifest hash is one of these."""
    shas = sorted(set(manifest_sha256s))
    with session() as s:
        return [_run_row(r) for r in s.scalars(select(Run).where(Run.dataset_manifest_sha256.in_(shas))
                                                .order_by(Run.id))]


def mark_retrain_required(manifest_sha256s: Iterable[str], reason: str) -> list[dict[str, Any]]:
    """Flag every run trained on these dataset versions (erasure); returns the flagged runs."""
    shas = sorted(set(manifest_sha256s))
    with session() as s, s.begin():
        rows = list(s.scalars(select(Run).where(Run.dataset_manifest_sha256.in_(shas)).order_by(Run.id)))
        for r in rows:
            r.status, r.status_reason = RETRAIN_REQUIRED, reason[:512]
    return [_run_row(r) for r in rows]


def run_status(run_dir: str | Path) -> str | None:
    """The registry's status for the run at run_dir, or None when it is not registered."""
    with session() as s:
        row = s.scalar(select(Run).where(Run.path == str(Path(run_dir).resolve())))
        return row.status if row else None


def mark_dataset_superseded(old_manifest_sha256: str, new_manifest_sha256: str) -> int:
    with session() as s, s.begin():
        rows = list(s.scalars(select(Dataset).where(Dataset.manifest_sha256 == old_manifest_sha256)))
        for r in rows:
            r.superseded_by = new_manifest_sha256
    return len(rows)
