"""Exports of a tiny run: each one reloads and reproduces the run's model, or nothing is written."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from export_helpers import make_run
from typer.testing import CliRunner

from privtune.cli import app
from privtune.config import ExportConfig
from privtune.errors import InputError
from privtune.export import export_run
from privtune.export.gguf import gguf_name, rope_interleave
from privtune.export.ollama import go_template, probe_shape, render_go, verify_template

FAST = ExportConfig(verify_max_new_tokens=16)


def _modes_private(root):
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), p


# ---------------------------------------------------------------------------------------------- merged
def test_merged_reloads_as_plain_transformers_model_with_same_logits(tiny_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = export_run([str(tiny_run)], "merged", tmp_path / "merged", FAST)
    out = tmp_path / "merged"
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "export.json"} <= {
        p.name for p in out.iterdir()}
    assert report["verify"]["match_rate"] == 1.0 and report["verify"]["prompts"] == 5
    assert report["lineage"]["adapter_sha256"] == json.loads((tiny_run / "run.json").read_text())["adapter_sha256"]
    assert set(report["files"]) >= {"model.safetensors", "config.json"}
    _modes_private(out)

    merged = AutoModelForCausalLM.from_pretrained(out)
    base = json.loads((tiny_run / "run.json").read_text())["base"]["path"]
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), tiny_run / "adapter")
    plain = AutoModelForCausalLM.from_pretrained(base)
    ids = AutoTokenizer.from_pretrained(out)("Transfer failed twice", return_tensors="pt")
    with torch.no_grad():
        a, b, c = merged(**ids).logits, peft(**ids).logits, plain(**ids).logits
    assert (a - b).abs().max() < 1e-4 and (a - c).abs().max() > 1e-2  # the adapter is in, and it matters
    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(tiny_run / "adapter").chat_template


# ------------------------------------------------------------------------------------------------ gguf
def test_rope_interleave_pairs_halves_per_head():
    w = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)  # 2 heads of head_dim 4, rows x0 x1 y0 y1
    out = rope_interleave(w, 2)
    assert [int(r[0]) for r in out] == [0, 6, 3, 9, 12, 18, 15, 21]  # x0 y0 x1 y1 per head
    assert gguf_name("model.layers.3.self_attn.k_proj.weight") == "blk.3.attn_k.weight"
    assert gguf_name("model.layers.0.mlp.down_proj.weight") == "blk.0.ffn_down.weight"
    assert gguf_name("model.rotary_emb.inv_freq") is None


def test_gguf_f16_and_q8_0_reload_and_match(tiny_run, tmp_path):
    from gguf import GGUFReader

    report = export_run([str(tiny_run)], "gguf", tmp_path / "g", FAST)
    f16, q8 = report["gguf"]["f16"], report["gguf"]["q8_0"]
    assert f16["verify"]["weights_max_rel_error"] == 0.0  # exactly the f16-rounded merged weights
    assert f16["verify"]["greedy"]["match_rate"] == 1.0 and f16["verify"]["greedy"]["prompts"] == 5
    assert 0 < q8["verify"]["weights_max_rel_error"] < 0.01  # q8_0 error bound: 1/127 of each block's max
    assert 0.0 <= q8["verify"]["greedy"]["match_rate"] <= 1.0  # reported; q8_0 is gated on next-token agreement
    assert q8["verify"]["next_token_agreement"] >= 0.9 and f16["verify"]["next_token_agreement"] == 1.0
    for rec in (f16, q8):
        assert rec["verify"]["tokenizer"]["same_ids"] == rec["verify"]["tokenizer"]["texts"]
        assert rec["verify"]["tokenizer"]["chat_template_equal"]
    assert q8["bytes"] < f16["bytes"]

    reader = GGUFReader(tmp_path / "g" / "model-q8_0.gguf")
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.t")
              and k != "tokenizer.ggml.merges"}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_run / "adapter")
    assert fields["general.architecture"] == "llama" and fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.chat_template"] == tok.chat_template
    assert fields["tokenizer.ggml.eos_token_id"] == tok.eos_token_id
    assert fields["llama.block_count"] == 2 and fields["llama.attention.head_count_kv"] == 2
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert tokens[tok.eos_token_id] == "<|im_end|>" and types[tok.eos_token_id] == 3  # control token
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == "Q8_0" and kinds["blk.0.attn_norm.weight"] == "F32"
    assert "output.weight" not in kinds  # tied embeddings are not duplicated


# ---------------------------------------------------------------------------------------------- ollama
OWN_DEFAULT_SYSTEM = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are the privtune test assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
BRACKETS = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
            "{% else %}{{ m['content'] + '</s>' }}{% endif %}{% endfor %}")


def test_go_template_renderer_handles_range_if_and_trim():
    tpl = "{{- if .System }}S:{{ .System }}\n{{ end -}}\n  {{ range .Messages }}[{{ .Role }}]{{ .Content }}{{ end }}"
    data = {"System": "sys", "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}]}
    assert render_go(tpl, data) == "S:sys\n[user]hi[assistant]yo"
    assert render_go(tpl, {**data, "System": ""}) == "[user]hi[assistant]yo"
    assert render_go('{{ if eq .R "a" }}A{{ else }}B{{ end }}', {"R": "b"}) == "B"


def test_ollama_template_equals_chat_template_including_default_system(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    shape = probe_shape(tok)
    assert shape.default_system is None and go_template(shape).count("{{ .Content }}") == 1
    assert verify_template(tok, go_template(shape), None)["identical"] == 5
    tok.chat_template = OWN_DEFAULT_SYSTEM
    shape = probe_shape(tok)
    assert shape.default_system == "You are the privtune test assistant."
    assert verify_template(tok, go_template(shape), shape.default_system)["identical"] == 5
    tok.chat_template = BRACKETS
    with pytest.raises(InputError):
        probe_shape(tok)


def test_ollama_export_writes_modelfile_with_template_stop_and_system(tiny_model_dir, tmp_path):
    run = make_run(tiny_model_dir, tmp_path / "runs" / "Support Bot", chat_template=OWN_DEFAULT_SYSTEM)
    report = export_run([str(run)], "ollama", tmp_path / "o", FAST)
    text = (tmp_path / "o" / "Modelfile").read_text()
    assert "FROM ./model-q8_0.gguf" in text
    assert 'TEMPLATE """{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}' \
           '<|im_start|>assistant\n"""' in text
    assert 'SYSTEM """You are the privtune test assistant."""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER num_ctx 512" in text
    assert report["ollama"]["name"] == "support-bot" and report["ollama"]["template_check"]["identical"] == 5
    assert (tmp_path / "o" / "model-q8_0.gguf").stat().st_size > 0


def test_ollama_refuses_a_template_it_cannot_reproduce_and_writes_nothing(tiny_model_dir, tmp_path):
    run = make_run(tiny_model_dir, tmp_path / "brackets", chat_template=BRACKETS)
    with pytest.raises(InputError, match="chat template"):
        export_run([str(run)], "ollama", tmp_path / "o", FAST)
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]  # no staging leftovers


# ------------------------------------------------------------------------------------------------ vllm
def test_vllm_export_is_self_contained_multi_lora(tiny_model_dir, tiny_run, tmp_path):
    import subprocess

    legal = make_run(tiny_model_dir, tmp_path / "legal", seed=5, r=16)
    report = export_run([f"support={tiny_run}", f"legal={legal}"], "vllm", tmp_path / "v", FAST)
    out = tmp_path / "v"
    script = (out / "launch.sh").read_text()
    assert "--enable-lora --max-loras 2 --max-lora-rank 16" in script
    assert 'support="$HERE/adapters/support"' in script and 'legal="$HERE/adapters/legal"' in script
    assert '--chat-template "$HERE/chat_template.jinja"' in script and 'serve "$HERE/base"' in script
    assert subprocess.run(["bash", "-n", str(out / "launch.sh")]).returncode == 0
    assert (out / "base" / "model.safetensors").is_file()
    assert (out / "adapters" / "legal" / "adapter_model.safetensors").is_file()
    assert report["verify"]["support"]["ok"] and report["verify"]["legal"]["max_abs_logit_diff"] < 1e-4
    assert (tiny_model_dir / "model.safetensors").stat().st_nlink == 1  # copied, never linked to the original


def test_vllm_refuses_dora(tiny_model_dir, tmp_path):
    dora = make_run(tiny_model_dir, tmp_path / "dora", use_dora=True)
    with pytest.raises(InputError, match="DoRA"):
        export_run([str(dora)], "vllm", tmp_path / "v", FAST)


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_export_exit_codes(tiny_run, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["export", "--run", str(tiny_run), "--format", "merged", "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["export", "--run", str(tiny_run), "--format", "onnx", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "format" in bad.output
    missing = runner.invoke(app, ["export", "--run", str(tmp_path / "nope"), "--format", "gguf", "--out",
                                  str(tmp_path / "y")])
    assert missing.exit_code == 2 and "run directory not found" in missing.output
    two = runner.invoke(app, ["export", "--run", str(tiny_run), "--run", str(tiny_run), "--format", "gguf",
                              "--out", str(tmp_path / "z")])
    assert two.exit_code == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ---------------------------------------------------------------------------------------------- erasure
def test_run_flagged_by_an_erasure_is_not_exported_unless_forced(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "RETRAIN_REQUIRED.json").write_text(json.dumps({"reason": "subject erased from dataset v3"}))
    res = CliRunner().invoke(app, ["export", "--run", str(run), "--format", "merged", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "subject erased from dataset v3" in res.output
    assert "--force-retrain-required" in res.output and not (tmp_path / "m").exists()
    report = export_run([str(run)], "merged", tmp_path / "m", FAST, force_retrain_required=True)
    assert len(report["forced_retrain_required"]) == 1
    assert json.loads((tmp_path / "m" / "export.json").read_text())["forced_retrain_required"] == \
        report["forced_retrain_required"]
