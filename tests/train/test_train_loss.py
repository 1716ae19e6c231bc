"""The LM head applied only at label positions gives the same loss (and gradients) as HF's full-logits loss."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from privtune.train.collate import collate, encode_chat
from privtune.train.loss import body_and_head, full_logits_loss, label_position_loss, make_loss_fn

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

CHATS = [
    [{"role": "user", "content": "I lost my card."}, {"role": "assistant", "content": "card_lost"}],
    [{"role": "system", "content": "Classify the ticket."},
     {"role": "user", "content": "Transfer failed twice, what happened?"},
     {"role": "assistant", "content": "transfer_failed"},
     {"role": "user", "content": "Please reset my online banking password."},
     {"role": "assistant", "content": "account_access"}],
    [{"role": "user", "content": "yes"}, {"role": "assistant", "content": "no maybe 0 1 2"}],
]


@pytest.fixture()
def setup(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    # init_lora_weights=False: B is random too, so the adapter really changes the outputs
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.eval()
    batch = collate([encode_chat(tok, str(i), c, 512)[0] for i, c in enumerate(CHATS)], tok.pad_token_id)
    assert batch["attention_mask"].eq(0).any()  # the batch really has padding
    return model, batch


def test_label_position_loss_equals_hf_loss(setup):
    model, batch = setup
    body, head = body_and_head(model)
    with torch.no_grad():
        s, n = label_position_loss(body, head, batch)
        hf = model(**batch, use_cache=False).loss
    assert n == int(batch["labels"][:, 1:].ne(-100).sum())
    assert abs(float(s) / n - float(hf)) < 1e-5
    with torch.no_grad():
        full, n_full = full_logits_loss(model, batch)
    assert n_full == n and abs(float(full) - float(s)) < 1e-5 * n


def test_label_position_gradients_equal_full_logit_gradients(setup):
    model, batch = setup
    body, head = body_and_head(model)
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(loss_fn):
        model.zero_grad()
        s, n = loss_fn()
        (s / n).backward()
        return [p.grad.clone() for p in params]

    fast = grads(lambda: label_position_loss(body, head, batch))
    slow = grads(lambda: full_logits_loss(model, batch))
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_make_loss_fn_picks_the_fast_path_for_llama(setup):
    model, batch = setup
    _, mode = make_loss_fn(model, batch)
    assert mode == "label_positions"


def test_make_loss_fn_falls_back_when_logits_are_post_processed(setup):
    model, batch = setup
    model.config.final_logit_softcapping = 30.0  # as Gemma 2 would have: the head alone is not the logits
    fn, mode = make_loss_fn(model, batch)
    assert mode == "full_logits"
    with torch.no_grad():
        s, n = fn(batch)
        assert abs(float(s) / n - float(model(**batch, use_cache=False).loss)) < 1e-5
