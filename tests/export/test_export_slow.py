"""GGUF and Ollama exports of a run on the packaged SmolLM2-135M-Instruct (slow: 135M parameters)."""

from __future__ import annotations

import pytest

from privtune.config import ExportConfig
from privtune.export import export_run


@pytest.fixture(scope="module")
def packaged_run(packaged_base, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model

    from privtune import fsio
    from privtune.models import load_model, load_tokenizer

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("packaged-export") / "support"
    torch.manual_seed(0)
    model = get_peft_model(load_model(packaged_base), LoraConfig(r=8, lora_alpha=16, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 2e-3)
    model.save_pretrained(out / "adapter")
    load_tokenizer(packaged_base).save_pretrained(out / "adapter")
    fsio.write_json(out / "run.json", {"status": "finished", "method": "lora", "adapter_name": "support",
                                       "config": {"base": None}, "base": packaged_base.to_dict(),
                                       "adapter_sha256": fsio.sha256_dir(out / "adapter")})
    return out


@pytest.mark.slow
def test_packaged_gguf_roundtrip_f16_exact_q8_close(packaged_run, tmp_path):
    report = export_run([str(packaged_run)], "gguf", tmp_path / "gguf", ExportConfig())
    f16, q8 = report["gguf"]["f16"], report["gguf"]["q8_0"]
    assert report["verify"]["match_rate"] == 1.0  # merged == base+adapter
    assert f16["verify"]["greedy"]["match_rate"] == 1.0 and f16["verify"]["weights_max_rel_error"] == 0.0
    assert q8["verify"]["next_token_agreement"] >= 0.9
    assert f16["pre_tokenizer"] == "smollm"  # copied from the packaged GGUF
    for rec in (f16, q8):
        tok = rec["verify"]["tokenizer"]
        assert tok["chat_template_equal"] and tok["same_ids"] == tok["texts"]
    print("GGUF roundtrip:", {k: v["verify"] for k, v in report["gguf"].items()})


@pytest.mark.slow
def test_packaged_ollama_template_keeps_the_default_system_prompt(packaged_run, tmp_path):
    report = export_run([str(packaged_run)], "ollama", tmp_path / "ollama", ExportConfig(verify_prompts=2))
    text = (tmp_path / "ollama" / "Modelfile").read_text()
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert "FROM ./model-q8_0.gguf" in text and 'PARAMETER stop "<|im_end|>"' in text
    assert "PARAMETER num_ctx 8192" in text
    assert report["ollama"]["template_check"]["identical"] == report["ollama"]["template_check"]["conversations"]
