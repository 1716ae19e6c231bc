"""`privtune export`: a run as a merged model, GGUF (f16/q8_0), an Ollama Modelfile or a vLLM multi-LoRA launch.

Each format is built in a staged directory and verified before it appears (see merge.py, gguf.py, ollama.py,
vllm.py); DIR/export.json records the lineage (adapter and base sha256), the sha256 of every file written
and the verification results. A failed check leaves nothing behind.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from privtune import fsio
from privtune.config import ExportConfig
from privtune.errors import InputError
from privtune.registry import crypto

log = logging.getLogger(__name__)

FORMATS = ("merged", "gguf", "ollama", "vllm")


class VerificationFailed(RuntimeError):
    """The exported artefact does not reproduce the run's model; nothing was written."""


def parse_runs(specs: list[str]) -> dict[str, Path]:
    """[NAME=]RUN_DIR -> {name: path}; the name defaults to run.json's adapter_name, else the dir name."""
    from privtune.serve.loader import parse_adapter_specs

    return parse_adapter_specs(specs)


def _tmpdir(near: Path) -> Path:
    fsio.ensure_private_dir(near.parent)
    return Path(tempfile.mkdtemp(prefix=f".{near.name}.work.", dir=near.parent))


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): fsio.sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "export.json"}


def _label(run: Path) -> str:
    """A run's display name: run.json's adapter_name, else the directory name."""
    import json

    try:
        return json.loads((run / "run.json").read_text()).get("adapter_name") or run.resolve().name
    except (OSError, ValueError):
        return run.resolve().name


def _ollama_name(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "privtune-model"


# --------------------------------------------------------------------------------------------- formats
def _merged(run: Path, out: Path, cfg: ExportConfig) -> dict[str, Any]:
    from privtune.export.merge import merge_run

    record = merge_run(run, out, cfg.verify_prompts, cfg.verify_max_new_tokens, cfg.verify)
    record.pop("_reference", None)
    return record


def _gguf_files(run: Path, out: Path, cfg: ExportConfig, qtypes: list[str], name: str) -> dict[str, Any]:
    """Merge into a scratch dir, write one GGUF per type into `out`, verify each against the merged model."""
    from privtune.export.gguf import source_pre, verify_gguf, write_gguf
    from privtune.export.merge import merge_run, verification_messages

    scratch = _tmpdir(out)
    try:
        merged_dir = scratch / "merged"
        record = merge_run(run, merged_dir, cfg.verify_prompts, cfg.verify_max_new_tokens, verify=True)
        ref = record.pop("_reference")
        base = record["lineage"]["base"]
        pre = source_pre(base)
        record["gguf"] = {}
        for qtype in qtypes:
            path = out / f"model-{qtype}.gguf"
            desc = f"privtune export of {Path(record['lineage']['run_dir']).name} (adapter sha256 " \
                   f"{record['lineage']['adapter_sha256'][:12]}, base {base.get('name')})"
            summary = write_gguf(merged_dir, path, qtype, name, pre=pre, description=desc)
            if cfg.verify:
                import json as _json

                from privtune.evaluate.generate import read_run_json

                convs = verification_messages(read_run_json(run), cfg.verify_prompts)
                check = verify_gguf(path, merged_dir, ref["prompts"], ref["generations"], ref["stops"],
                                    cfg.verify_max_new_tokens, qtype, convs)
                summary["verify"] = check
                if qtype == "f16" and check["greedy"]["match_rate"] < 1.0:
                    raise VerificationFailed(f"{path.name}: greedy output differs from the merged model on "
                                             f"{check['greedy']['prompts'] - check['greedy']['exact_match']} of "
                                             f"{check['greedy']['prompts']} prompts; details: {_json.dumps(check)[:300]}")
                if qtype != "f16" and check["next_token_agreement"] < cfg.q8_min_agreement:
                    raise VerificationFailed(f"{path.name}: next-token agreement with the merged model is "
                                             f"{check['next_token_agreement']:.1%} (need {cfg.q8_min_agreement:.0%}); "
                                             f"details: {_json.dumps(check)[:300]}")
                if not check["tokenizer"]["chat_template_equal"]:
                    raise VerificationFailed(f"{path.name}: the chat template did not survive the round trip")
            record["gguf"][qtype] = summary
            log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
        return record
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ollama(run: Path, out: Path, cfg: ExportConfig, name: str) -> dict[str, Any]:
    import json

    from transformers import AutoTokenizer

    from privtune.evaluate.generate import read_run_json, resolve_run_base
    from privtune.export import ollama

    run_json = read_run_json(run)
    base_dir = Path(resolve_run_base(run, run_json).path)
    adapter_dir = run / "adapter"
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    tok = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True, trust_remote_code=False)
    shape = ollama.probe_shape(tok)  # before the slow part: a template we cannot express fails in a second
    template = ollama.go_template(shape)
    check = ollama.verify_template(tok, template, shape.default_system)
    record = _gguf_files(run, out, cfg, [cfg.ollama_type], name)
    gguf_name = f"model-{cfg.ollama_type}.gguf"
    context = json.loads((base_dir / "config.json").read_text()).get("max_position_embeddings", 2048)
    params = ollama.sampling_parameters(base_dir, context)
    stops = ollama.stop_strings(tok, shape)
    header = (f"Ollama Modelfile written by `privtune export --format ollama` for {name}\n"
              f"run {record['lineage']['run_dir']} (adapter sha256 {record['lineage']['adapter_sha256'][:16]})\n"
              f"create: ollama create {name} -f Modelfile   run: ollama run {name}")
    fsio.write_text(out / "Modelfile", ollama.modelfile(gguf_name, template, shape.default_system, stops, params,
                                                        header))
    fsio.write_text(out / "README.md", f"# {name} for Ollama\n\n```sh\ncd {out.name}\nollama create {name} -f "
                    f"Modelfile\nollama run {name}\n```\n\nThe TEMPLATE reproduces the model's chat template "
                    f"exactly (checked on {check['conversations']} conversations); stop: {', '.join(stops)}.\n")
    record["ollama"] = {"name": name, "gguf": gguf_name, "template_check": check, "stop": stops,
                        "parameters": params, "system": shape.default_system is not None}
    return record


def _vllm(runs: dict[str, Path], out: Path, cfg: ExportConfig, base_name: str | None) -> dict[str, Any]:
    import json

    from transformers import AutoTokenizer

    from privtune.evaluate.generate import (
        artefact_of,
        check_adapter_hash,
        load_run_model,
        read_run_json,
        resolve_run_base,
    )
    from privtune.export import vllm

    infos, ranks, bases = {}, [], {}
    for name, run in runs.items():
        run_json = read_run_json(run)
        if artefact_of(run) == "model":
            raise InputError(f"run '{name}' is a full fine-tune (model/), not a LoRA adapter: vLLM serves it as a "
                             "plain model directory — export it with --format merged", where=str(run))
        adapter_cfg = json.loads(crypto.read_text_maybe_encrypted(run / "adapter" / "adapter_config.json"))
        ranks.append(vllm.check_adapter(name, adapter_cfg))
        sha = check_adapter_hash(run, run_json)
        bases[name] = resolve_run_base(run, run_json)
        infos[name] = {"run_dir": str(run.resolve()), "adapter_sha256": sha, "rank": ranks[-1]}
    first = next(iter(bases.values()))
    for name, b in bases.items():
        if b.weights_sha256 != first.weights_sha256:
            raise InputError(f"adapter '{name}' was trained on another base ({b.name}); one vLLM server serves "
                             "adapters of one base", where=str(runs[name]), field="base.weights_sha256")
    base_path = Path(first.path)
    if cfg.copy_base:
        vllm.copy_base(base_path, out / "base")
        base_ref = "base"
    else:
        base_ref = str(base_path.resolve())
    adapters = {}
    for name, run in runs.items():
        dest = out / "adapters" / name
        # vLLM reads plaintext: an adapter encrypted at rest is decrypted into the export (which is the point of it)
        with crypto.decrypted_dir(run / "adapter") as adir:
            shutil.copytree(adir, dest)
        adapters[name] = f"adapters/{name}"
    tok_src = out / "adapters" / next(iter(runs))
    tok = AutoTokenizer.from_pretrained(tok_src if (tok_src / "tokenizer_config.json").is_file() else base_path,
                                        local_files_only=True)
    if not getattr(tok, "chat_template", None):
        raise InputError("the tokenizer has no chat template for vLLM's chat endpoint", where=str(tok_src))
    fsio.write_text(out / "chat_template.jinja", tok.chat_template)
    config = json.loads((base_path / "config.json").read_text())
    max_len = min(int(config.get("max_position_embeddings", 2048)), 8192)
    max_rank = vllm.lora_rank_flag(ranks)
    served_base = base_name or first.name
    header = (f"vLLM multi-LoRA launch written by `privtune export --format vllm`: base {first.name} "
              f"(sha256 {first.weights_sha256[:16]}), adapters {', '.join(runs)}")
    script = out / "launch.sh"
    fsio.write_text(script, vllm.launch_script(base_ref, served_base, adapters, max_rank, max_len, cfg.vllm_dtype,
                                               header))
    vllm.write_vllm_config(out, {"model": base_ref, "served-model-name": served_base, "dtype": cfg.vllm_dtype,
                                 "max-model-len": max_len, "enable-lora": True, "max-loras": len(adapters),
                                 "max-lora-rank": max_rank,
                                 "lora-modules": [f"{n}={p}" for n, p in adapters.items()],
                                 "chat-template": "chat_template.jinja"})
    record: dict[str, Any] = {"vllm": {"base": base_ref, "served_model_name": served_base, "adapters": infos,
                                       "max_lora_rank": max_rank, "max_model_len": max_len}}
    checks: dict[str, Any] = {"bash_syntax_ok": vllm.bash_syntax_ok(script)}
    if not checks["bash_syntax_ok"]:
        raise VerificationFailed("launch.sh does not pass `bash -n`")
    if cfg.verify:
        base_dir = out / "base" if cfg.copy_base else base_path
        for name, run in runs.items():
            model, run_tok, _ = load_run_model(run)
            checks[name] = vllm.verify_adapter_copy(base_dir, out / "adapters" / name, model, run_tok)
            if not checks[name]["ok"]:
                raise VerificationFailed(f"adapter '{name}' on the exported base does not reproduce the run "
                                         f"(max logit diff {checks[name]['max_abs_logit_diff']})")
    record["verify"] = checks
    record["lineage"] = {n: {**infos[n], "base": bases[n].to_dict()} for n in runs}
    return record


# ------------------------------------------------------------------------------------------------ entry
def export_run(runs: list[str], fmt: str, out: str | Path, cfg: ExportConfig | None = None,
               name: str | None = None, force_retrain_required: bool = False) -> dict[str, Any]:
    """Write the export to `out` (replaced only when complete and verified); returns export.json's content."""
    cfg = cfg or ExportConfig()
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    if not runs:
        raise InputError("give the run to export with --run RUN_DIR", field="run")
    if fmt != "vllm" and len(runs) > 1:
        raise InputError(f"--format {fmt} exports one run; several --run are for --format vllm", field="run")
    specs = parse_runs(runs) if fmt == "vllm" else {_label(Path(runs[0])): Path(runs[0])}
    forced = _check_erasure(specs, force_retrain_required)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a directory", where=str(out))
    t0 = time.time()
    label = name or next(iter(specs))
    with fsio.staged_dir(out) as tmp:
        run = next(iter(specs.values()))
        if fmt == "merged":
            record = _merged(run, tmp, cfg)
        elif fmt == "gguf":
            record = _gguf_files(run, tmp, cfg, list(dict.fromkeys(cfg.gguf_types)), label)
        elif fmt == "ollama":
            record = _ollama(run, tmp, cfg, _ollama_name(label))
        else:
            record = _vllm(specs, tmp, cfg, name)
        report = {"format": fmt, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "seconds": round(time.time() - t0, 2), **record, "files": _files(tmp)}
        if forced:
            report["forced_retrain_required"] = forced
        fsio.write_json(tmp / "export.json", report)
    _audit(fmt, out, report)
    log.info("export %s written to %s in %.1f s", fmt, out, report["seconds"])
    return report


def _check_erasure(specs: dict[str, Path], force: bool) -> list[str]:
    """An erasure request outranks an export: flagged runs need --force-retrain-required (recorded in export.json)."""
    from privtune.forget import retrain_reason

    forced = []
    for label, run in specs.items():
        if (reason := retrain_reason(run)) is None:
            continue
        if not force:
            raise InputError(f"run {label!r} must be retrained: {reason}. Retrain it on the current dataset version, "
                             "or export it anyway with --force-retrain-required", where=str(run))
        log.warning("exporting %s although it is flagged retrain_required (forced): %s", label, reason)
        forced.append(label)
    return forced


def _audit(fmt: str, out: Path, report: dict) -> None:
    from privtune.registry import auditlog

    lineage = report.get("lineage") or {}
    runs = lineage.values() if fmt == "vllm" else [lineage]
    inputs = {}
    for i, lin in enumerate(runs):
        if lin.get("adapter_sha256"):
            inputs[f"adapter{i}"] = lin["adapter_sha256"]
        if (lin.get("base") or {}).get("weights_sha256"):
            inputs["base"] = lin["base"]["weights_sha256"]
    outputs = {k: v for k, v in report["files"].items() if k.endswith((".gguf", ".safetensors", "Modelfile",
                                                                         "launch.sh"))}
    auditlog.append("export", inputs=inputs, outputs=outputs, details={"format": fmt, "out": str(out.resolve())})
