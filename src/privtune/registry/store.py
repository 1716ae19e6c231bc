"""Embedded registry of datasets, runs and evals (SQLite under PRIVTUNE_HOME, or PRIVTUNE_DB=<SQLAlchemy URL>).

Rows hold hashes and lineage, never record text: the registry may be shared with a team.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, create_engine, select
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


@lru_cache(maxsize=4)
def _engine(url: str):
    if url.startswith("sqlite:///"):
        fsio.ensure_private_dir(privtune_home())
    engine = create_engine(url, future=True)
    Base.metadata.create_all(engine)
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
        row.dataset_manifest_sha256 = run.get("dataset", {}).get("manifest_sha256", "")
        row.adapter_sha256 = run.get("adapter_sha256")
        row.status = run.get("status", "finished")
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
    table = Table(title=f"privtune runs ({registry_url().split('://')[0]})")
    for col in ("id", "adapter", "method", "base", "data", "best val loss", "eval (tuned)", "created", "path"):
        table.add_column(col)
    for r in rows:
        scores = r["eval"] or {}
        shown = ", ".join(f"{k}={v:.3f}" for k, v in scores.items() if k in ("accuracy", "macro_f1", "rouge_l",
                                                                           "token_f1") and v is not None)
        table.add_row(str(r["id"]), r["adapter_name"] or "-", r["method"], f"{r['base']} ({r['base_sha256']})",
                      r["dataset_sha256"], "-" if r["best_val_loss"] is None else f"{r['best_val_loss']:.4f}",
                      shown or "-", r["created_at"], r["path"])
    Console().print(table)
