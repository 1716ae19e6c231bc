"""The pattern train/eval/serve use: PEFT writes into encrypted_output, loads through decrypted_dir; no plaintext."""

from __future__ import annotations

import pytest
import torch

from privtune import fsio
from privtune.registry import crypto


def _tree_bytes(root) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_peft_adapter_roundtrip_through_encryption(tiny_model_dir, tmp_path, monkeypatch):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    key = crypto.keygen(tmp_path / "data.key")
    monkeypatch.setenv(crypto.KEY_ENV, key.path)
    scratch = tmp_path / "scratch"
    monkeypatch.setenv("PRIVTUNE_PLAINTEXT_DIR", str(scratch))
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits

    run = tmp_path / "run"
    with crypto.encrypted_output(run / "adapter") as tmp:
        model.save_pretrained(tmp)
        plain_hash = crypto.sha256_dir_plaintext(tmp)
        plain_weights = (tmp / "adapter_model.safetensors").read_bytes()
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"adapter_model.safetensors", "adapter_config.json"}
    assert all(crypto.is_encrypted(p) for p in files)
    assert plain_weights[64:256] not in _tree_bytes(tmp_path)  # weights appear nowhere in plaintext
    assert b"lora_alpha" not in _tree_bytes(run)
    assert not list(scratch.iterdir())
    assert crypto.sha256_dir_plaintext(run / "adapter") == plain_hash

    with crypto.decrypted_dir(run / "adapter") as adir:
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        loaded = PeftModel.from_pretrained(base, adir, is_trainable=False)
        seen = adir
    assert not seen.exists() and not list(scratch.iterdir())
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-6)


def test_loading_with_a_wrong_key_is_an_input_error(tiny_model_dir, tmp_path, monkeypatch):
    from privtune.errors import InputError

    key = crypto.keygen(tmp_path / "a.key")
    monkeypatch.setenv("PRIVTUNE_PLAINTEXT_DIR", str(tmp_path / "scratch"))
    adapter = tmp_path / "adapter"
    fsio.write_text(adapter / "adapter_config.json", "{}")
    crypto.encrypt_tree(adapter, key)
    monkeypatch.setenv(crypto.KEY_ENV, crypto.keygen(tmp_path / "b.key").path)
    with pytest.raises(InputError, match="key id"), crypto.decrypted_dir(adapter):
        pass
    monkeypatch.delenv(crypto.KEY_ENV)
    with pytest.raises(InputError, match="PRIVTUNE_KEY_FILE"), crypto.decrypted_dir(adapter):
        pass
    assert not list((tmp_path / "scratch").iterdir())
