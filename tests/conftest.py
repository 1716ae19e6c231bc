"""Shared fixtures: a private PRIVTUNE_HOME per test, a tiny random llama with a real tokenizer, the packaged model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from privtune.offline import go_offline

REPO = Path(__file__).resolve().parents[1]
MODEL_CACHE = Path(os.environ.get("PRIVTUNE_TEST_MODELS", REPO / ".cache" / "test-models"))

go_offline()  # tests run under the same offline env + egress guard as the CLI

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = [
    "The customer lost a card and needs a replacement.", "Please reset my online banking password.",
    "Transfer failed twice, what happened?", "card_lost transfer_failed account_access fraud_report",
    "Hello, my name is Anna Smith and my email is anna@example.com.", "Classify the ticket. Answer with the label.",
    "yes no maybe 0 1 2 3 4 5 6 7 8 9 [PERSON] [EMAIL_ADDRESS] [PHONE_NUMBER]",
]


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("privtune-home")
    monkeypatch.setenv("PRIVTUNE_HOME", str(home))
    monkeypatch.setenv("PRIVTUNE_MODELS_DIR", str(MODEL_CACHE))
    yield home


def build_tiny_model(out: Path, vocab_size: int = 384, seed: int = 0) -> Path:
    """A 2-layer llama (~0.3M params) + a byte-level BPE tokenizer trained here, with a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


# torch's own default (physical cores), read before any fixture pins threads to 1 for small models
DEFAULT_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy CI machine spinning threads make them 5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def all_threads():
    """Give a real-model pipeline test every core (other fixtures leave torch on 1 thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(DEFAULT_TORCH_THREADS)
    yield DEFAULT_TORCH_THREADS
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Path to a tiny random llama HF directory (fast unit tests; no download)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def packaged_base():
    """The real packaged SmolLM2-135M-Instruct, converted once into the shared test model cache."""
    os.environ.setdefault("PRIVTUNE_MODELS_DIR", str(MODEL_CACHE))
    from privtune.models import resolve_base

    return resolve_base(None)
