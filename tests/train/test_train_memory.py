"""Frozen base weights stored in bfloat16 compute exactly what the bf16-rounded float32 model computes, learn, and
are refused where they do not apply; the allocator knob reaches glibc."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import fast_config
from typer.testing import CliRunner

from privtune.cli import app
from privtune.train import memory
from privtune.train.sft import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rounded(model):
    """The float32 model with every Linear/Embedding weight rounded to bfloat16: what the adapter trains against."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            m.weight.data = m.weight.data.to(torch.bfloat16).float()
    return model


@pytest.mark.parametrize("rows", [8192, 7])  # 7: the LM head is upcast in chunks, with a ragged last chunk
def test_upcast_model_equals_the_bf16_rounded_model_forward_and_backward(tiny_model_dir, monkeypatch, rows):
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(memory, "ROWS", rows)
    ref = _rounded(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    low = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    saved = memory.store_frozen_weights(low, torch.bfloat16)
    n_weights = sum(p.numel() for p in {id(p): p for m in low.modules()
                                        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))
                                        for p in [m.weight]}.values())
    assert saved == 2 * n_weights  # 2 bytes per weight, a tied LM head counted once
    assert low.lm_head.weight is low.model.embed_tokens.weight  # still one tensor
    assert all(p.dtype == torch.float32 for n, p in low.named_parameters() if "norm" in n)

    ids = torch.tensor([[1, 5, 9, 3, 7, 2], [4, 4, 8, 1, 0, 6]])
    x_ref = ref.model.embed_tokens(ids).detach().requires_grad_(True)
    x_low = low.model.embed_tokens(ids).detach().requires_grad_(True)
    assert x_low.dtype == torch.float32 and torch.equal(x_low, x_ref)
    out_ref = ref(inputs_embeds=x_ref).logits
    out_low = low(inputs_embeds=x_low).logits
    torch.testing.assert_close(out_low, out_ref, rtol=1e-5, atol=1e-5)
    out_ref.square().sum().backward()
    out_low.square().sum().backward()
    torch.testing.assert_close(x_low.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    frozen = [m.weight for m in low.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    assert all(not w.requires_grad and w.grad is None for w in frozen)  # no weight gradient is ever made


def test_lora_with_bf16_frozen_weights_learns_and_is_recorded(learnable_model_dir, label_data, tmp_path):
    run = train(label_data, tmp_path / "run", fast_config(learnable_model_dir, frozen_weights="bfloat16", epochs=2))
    assert run["final_val_loss"] < 0.5 * run["initial_val_loss"], run
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["frozen_weights"] == "bfloat16"
    adapter = (tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(adapter).values()} == {torch.float32}  # the adapter itself stays float32


@pytest.mark.parametrize("extra", [["--method", "full"], ["--method", "dora"], ["--dp-epsilon", "8"]])
def test_bf16_frozen_weights_outside_plain_lora_is_a_one_line_error(learnable_model_dir, label_data, tmp_path, extra):
    (tmp_path / "t.yaml").write_text("frozen_weights: bfloat16\n")
    r = CliRunner().invoke(app, ["train", "--data", str(label_data), "--out", str(tmp_path / "run"), "--base",
                                 str(learnable_model_dir), "--config", str(tmp_path / "t.yaml"), *extra])
    assert r.exit_code == 2 and "frozen_weights=bfloat16 is for --method lora" in r.output, r.output
    assert not (tmp_path / "run" / "adapter").exists()


def test_allocator_threshold_reaches_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert memory.tune_cpu_allocator(1024) is True
    assert memory.tune_cpu_allocator(None) is False
