"""--method dora|full|qlora|cpt: model setup per method on the tiny model (fast), and the QLoRA refusal on CPU."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import fast_config

from privtune.config import QLoraConfig, TrainConfig
from privtune.errors import InputError
from privtune.train import cpt, methods
from privtune.train.sft import train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------------ qlora
def test_qlora_on_cpu_is_a_one_line_input_error(label_data, learnable_model_dir, tmp_path):
    cfg = fast_config(learnable_model_dir, method="qlora")
    with pytest.raises(InputError, match="QLoRA needs a CUDA GPU with bitsandbytes; use --method lora on CPU"):
        methods.check_method(cfg, cuda_available=False, bnb_available=True)
    with pytest.raises(InputError, match="pip install bitsandbytes"):
        methods.check_method(cfg, cuda_available=True, bnb_available=False)
    methods.check_method(cfg, cuda_available=True, bnb_available=True)  # would run on a GPU
    methods.check_method(fast_config(learnable_model_dir), cuda_available=False, bnb_available=False)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="QLoRA needs a CUDA GPU"):
            train(label_data, tmp_path / "run", cfg)
        assert not (tmp_path / "run").exists()


def test_qlora_cli_exit_code_2_on_cpu(label_data, learnable_model_dir, tmp_path):
    from typer.testing import CliRunner

    from privtune.cli import app

    if torch.cuda.is_available():
        pytest.skip("CUDA present: QLoRA would run")
    res = CliRunner().invoke(app, ["train", "--data", str(label_data), "--out", str(tmp_path / "run"),
                                   "--base", str(learnable_model_dir), "--method", "qlora"])
    assert res.exit_code == 2
    assert "QLoRA needs a CUDA GPU with bitsandbytes; use --method lora on CPU" in res.output
    assert not (tmp_path / "run").exists()


def test_qlora_quantisation_config():
    kw = methods.bnb_4bit_kwargs(QLoraConfig())
    assert kw == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                  "bnb_4bit_compute_dtype": torch.bfloat16}
    assert methods.bnb_4bit_kwargs(QLoraConfig(compute_dtype="float16", double_quant=False))[
        "bnb_4bit_compute_dtype"] == torch.float16
    from transformers import BitsAndBytesConfig

    try:
        bnb = BitsAndBytesConfig(**kw)
    except ImportError:  # some transformers versions check for bitsandbytes here
        pytest.skip("bitsandbytes not installed")
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant


def test_method_defaults_and_lora_configs():
    assert TrainConfig(method="full").learning_rate == 2e-5 and TrainConfig(method="dpo").learning_rate == 5e-5
    assert TrainConfig(method="full", learning_rate=1e-3).learning_rate == 1e-3
    assert TrainConfig().learning_rate == TrainConfig(method="dora").learning_rate == 2e-4
    assert methods.peft_lora_config(TrainConfig(method="dora"), ["q_proj"]).use_dora
    assert not methods.peft_lora_config(TrainConfig(method="lora"), ["q_proj"]).use_dora
    assert methods.artefact_dir("full") == "model" and methods.artefact_dir("cpt") == "adapter"


# ------------------------------------------------------------------------------------------ dora / full
def test_dora_trains_a_weight_decomposed_adapter(learnable_model_dir, label_data, tmp_path):
    out = tmp_path / "run"
    run = train(label_data, out, fast_config(learnable_model_dir, method="dora", epochs=2))
    assert run["status"] == "finished" and run["method"] == "dora" and run["artefact"] == "adapter"
    assert run["best_val_loss"] < 0.5 * run["initial_val_loss"]
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["use_dora"] is True
    from safetensors.torch import load_file

    names = load_file(out / "adapter" / "adapter_model.safetensors").keys()
    assert any("lora_magnitude_vector" in n for n in names)


def test_full_fine_tuning_saves_a_loadable_model(learnable_model_dir, label_data, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    run = train(label_data, out, fast_config(learnable_model_dir, method="full", epochs=2, learning_rate=3e-3))
    assert run["method"] == "full" and run["artefact"] == "model" and not (out / "adapter").exists()
    assert run["trainable_params"] == run["total_params"]
    assert run["best_val_loss"] < 0.5 * run["initial_val_loss"]
    from privtune import fsio

    assert run["model_sha256"] == fsio.sha256_dir(out / "model")
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert AutoTokenizer.from_pretrained(out / "model").chat_template
    base = AutoModelForCausalLM.from_pretrained(learnable_model_dir)
    moved = [n for n, p in model.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert any("embed_tokens" in n for n in moved) and any("layers.0.mlp" in n for n in moved)


# ------------------------------------------------------------------------------------------ cpt
def test_pack_blocks_joins_with_eos_and_cuts_fixed_blocks():
    blocks = cpt.pack_blocks([[1, 2, 3], [4, 5], [6]], eos_id=0, block_size=4)
    assert blocks == [[1, 2, 3, 0], [4, 5, 0, 6], [0]][:2]  # a 1-token tail teaches nothing and is dropped
    assert cpt.pack_blocks([[1, 2, 3], [4]], eos_id=0, block_size=3) == [[1, 2, 3], [0, 4, 0]]
    tr, va = cpt.split_blocks(10, 0.2, seed=1)
    assert len(va) == 2 and sorted(tr + va) == list(range(10)) and cpt.split_blocks(10, 0.2, seed=1) == (tr, va)
    with pytest.raises(InputError, match="block_size"):
        cpt.split_blocks(1, 0.1, seed=1)


DOMAIN = ("Card replacement takes five working days. A lost card is blocked at once. "
          "Transfers above the daily limit need a second approval. ")


def test_cpt_on_a_directory_of_text_files(learnable_model_dir, tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for i in range(6):
        (docs / f"policy{i}.md").write_text(f"# Policy {i}\n" + DOMAIN * 3)
    (docs / "sub" / "faq.txt").write_text(DOMAIN * 4)
    (docs / "ignored.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "run"
    run = cpt.train(docs, out, fast_config(learnable_model_dir, method="cpt", epochs=3, cpt={"block_size": 32},
                                           learning_rate=2e-2))
    assert run["method"] == "cpt" and run["status"] == "finished"
    tok = run["tokenization"]
    assert tok["train"]["records"] == 7 and tok["train"]["max_len"] == 32
    # every token of a block but the first is learnt
    assert tok["train"]["supervised_tokens"] == tok["train"]["tokens"] - tok["train"]["kept"]
    assert run["dataset"]["n_val"] >= 1 and run["dataset"]["n_train"] > 4 * run["dataset"]["n_val"]
    assert run["best_val_loss"] < 0.7 * run["initial_val_loss"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_cpt_on_a_prepared_raw_text_dataset(learnable_model_dir, tmp_path):
    from train_helpers import write_dataset

    rows = [{"id": f"d{i}", "text": DOMAIN + f"Branch {i % 3}.", "metadata": {}} for i in range(24)]
    chat = {"id": "c1", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    data = write_dataset(tmp_path / "data", rows[:20] + [chat], rows[20:])
    run = cpt.train(data, tmp_path / "run", fast_config(learnable_model_dir, method="cpt", epochs=2,
                                                         cpt={"block_size": 64}, learning_rate=2e-2))
    assert run["tokenization"]["train"]["records"] == 21 and run["dataset"]["manifest_sha256"]
    assert run["best_val_loss"] < run["initial_val_loss"]


def test_cpt_bad_inputs_name_the_file(learnable_model_dir, tmp_path):
    from train_helpers import write_dataset

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="txt/.md"):
        cpt.train(tmp_path / "empty", tmp_path / "r1", fast_config(learnable_model_dir, method="cpt"))
    data = write_dataset(tmp_path / "d", [{"id": "x", "title": "no text"}], [{"id": "y", "text": "t"}])
    with pytest.raises(InputError, match=r"train.jsonl:1.*text"):
        cpt.train(data, tmp_path / "r2", fast_config(learnable_model_dir, method="cpt"))
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
