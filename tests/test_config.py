import pytest

from privtune.config import PrepareConfig, TrainConfig, load_config
from privtune.errors import InputError


def test_defaults_and_overrides():
    cfg = load_config(None, TrainConfig, {"epochs": 5, "lora.r": 4, "seed": None})
    assert cfg.epochs == 5 and cfg.lora.r == 4 and cfg.seed == 42


def test_yaml_error_names_file_line_and_field(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text("epochs: 2\nlora:\n  r: 8\n  dropout: 2.0\n")
    with pytest.raises(InputError) as e:
        load_config(f, TrainConfig)
    assert str(e.value).startswith(f"{f}:4: field 'lora.dropout'")


def test_unknown_field_is_rejected(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("split:\n  train: 0.8\n  vall: 0.1\n")
    with pytest.raises(InputError, match=r"p.yaml:\d+: field 'split.vall'"):
        load_config(f, PrepareConfig)


def test_split_must_sum_to_one(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("split:\n  train: 0.7\n  val: 0.1\n  test: 0.1\n")
    with pytest.raises(InputError, match="sum to 1"):
        load_config(f, PrepareConfig)


def test_invalid_yaml_and_missing_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("epochs: [1,\n")
    with pytest.raises(InputError, match="bad.yaml:2: invalid YAML"):
        load_config(f, TrainConfig)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.yaml", TrainConfig)


def test_quickstart_yaml_keeps_quickstart_defaults_for_unset_fields(tmp_path):
    from privtune.config import QuickstartConfig

    f = tmp_path / "q.yaml"
    f.write_text("train:\n  num_threads: 1\n")
    cfg = load_config(f, QuickstartConfig)
    assert cfg.train.num_threads == 1
    assert cfg.train.epochs == 1 and cfg.train.batch_size == 8 and cfg.train.learning_rate == 1e-3
    assert cfg.eval.max_new_tokens == 12 and cfg.train.max_seq_len == 256
    assert load_config(None, QuickstartConfig).train.epochs == 1
