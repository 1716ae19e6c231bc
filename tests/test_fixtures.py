import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_tiny_model_roundtrips_and_has_chat_template(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "reset my password"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt")
    logits = model(**ids).logits
    assert logits.shape[-1] == len(tok)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert json.loads((tiny_model_dir / "config.json").read_text())["num_hidden_layers"] == 2
    assert torch.isfinite(logits).all()
