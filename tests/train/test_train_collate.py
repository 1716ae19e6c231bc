"""Label masks from the model's own chat template, truncation, length-grouped batching, dynamic padding."""

from __future__ import annotations

from collections import Counter

import pytest
from transformers import AutoTokenizer

from privtune.train.collate import (
    IGNORE,
    collate,
    control_tokens,
    encode_chat,
    encode_records,
    length_grouped_batches,
    sorted_batches,
    spans_to_labels,
)
from privtune.train.records import ChatRecord

SYSTEM = {"role": "system", "content": "Classify the ticket. Answer with the label."}
MULTI = [SYSTEM,
         {"role": "user", "content": "Transfer failed twice, what happened?"},
         {"role": "assistant", "content": "transfer_failed"},
         {"role": "user", "content": "Please reset my online banking password."},
         {"role": "assistant", "content": "account_access"}]

# a SmolLM2-style template: injects a default system prompt when none is given
DEFAULT_SYSTEM_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def labelled_segments(tok, ex) -> list[str]:
    """Decoded runs of consecutive labelled tokens."""
    runs, cur = [], []
    for i, y in zip(ex.input_ids, ex.labels, strict=True):
        if y != IGNORE:
            assert y == i
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [tok.decode(r) for r in runs]


def test_single_turn_labels_only_answer_and_end_of_turn(tok):
    msgs = [SYSTEM, {"role": "user", "content": "I lost my card."}, {"role": "assistant", "content": "card_lost"}]
    ex, fallback = encode_chat(tok, "a", msgs, 512)
    assert not fallback
    assert labelled_segments(tok, ex) == ["card_lost<|im_end|>"]
    assert tok.decode(ex.input_ids) == tok.apply_chat_template(msgs, tokenize=False)
    unlabelled = tok.decode([i for i, y in zip(ex.input_ids, ex.labels, strict=True) if y == IGNORE])
    assert "I lost my card." in unlabelled and "Classify the ticket" in unlabelled
    assert ex.n_supervised == len(tok("card_lost", add_special_tokens=False)["input_ids"]) + 1


def test_multi_turn_supervises_every_assistant_turn_and_nothing_else(tok):
    ex, _ = encode_chat(tok, "a", MULTI, 512)
    assert labelled_segments(tok, ex) == ["transfer_failed<|im_end|>", "account_access<|im_end|>"]
    # the trailing newline after <|im_end|> and every user/system/header token are unlabelled
    assert ex.labels[-1] == IGNORE and tok.decode([ex.input_ids[-1]]) == "\n"


def test_turns_after_the_last_answer_are_dropped(tok):
    ex, _ = encode_chat(tok, "a", [*MULTI, {"role": "user", "content": "thanks"}], 512)
    full, _ = encode_chat(tok, "a", MULTI, 512)
    assert ex.input_ids == full.input_ids


def test_default_system_prompt_template_is_used_as_is(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = DEFAULT_SYSTEM_TEMPLATE
    msgs = [{"role": "user", "content": "I lost my card."}, {"role": "assistant", "content": "card_lost"}]
    ex, fallback = encode_chat(tok, "a", msgs, 512)
    assert not fallback
    assert tok.decode(ex.input_ids).startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert labelled_segments(tok, ex) == ["card_lost<|im_end|>"]


def test_inconsistent_template_falls_back_to_locating_content(tiny_model_dir):
    """A template that rewrites earlier assistant turns (as reasoning templates do) breaks prefix rendering."""
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
        "{% if m['role'] == 'assistant' and not loop.last %}{{ 'yes ' }}{% endif %}"
        "{{ m['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    ex, fallback = encode_chat(tok, "a", MULTI, 512, control_tokens(tok))
    assert fallback
    # " transfer" straddles the template's "yes " and the content: a token overlapping the answer is labelled
    assert [s.strip() for s in labelled_segments(tok, ex)] == ["transfer_failed<|im_end|>",
                                                               "account_access<|im_end|>"]


def test_spans_to_labels_overlap_rule():
    ids = [10, 11, 12, 13, 14]
    offsets = [(0, 3), (3, 5), (5, 9), (9, 10), (10, 12)]
    assert spans_to_labels(ids, offsets, [(4, 9)]) == [IGNORE, 11, 12, IGNORE, IGNORE]
    assert spans_to_labels(ids, offsets, [(0, 3), (10, 12)]) == [10, IGNORE, IGNORE, IGNORE, 14]


def test_truncation_counts_and_drops_records_without_answer_tokens(tok):
    long_prompt = "Transfer failed twice, what happened? " * 30
    recs = [ChatRecord("short", (MULTI[1], MULTI[2]), "f:1"),
            ChatRecord("long", ({"role": "user", "content": long_prompt}, MULTI[2]), "f:2"),
            ChatRecord("multi", tuple(MULTI), "f:3")]
    full_multi, _ = encode_chat(tok, "m", MULTI, 512)
    # cut inside the second answer of "multi": it is kept (first answer survives), "long" loses its answer
    cut = full_multi.input_ids.index(tok.convert_tokens_to_ids("<|im_end|>"), len(full_multi) - 6) - 1
    examples, stats = encode_records(tok, recs, cut)
    assert [e.id for e in examples] == ["short", "multi"]
    assert stats.truncated == 2 and stats.dropped == 1 and stats.dropped_ids == ["long"] and stats.kept == 2
    multi = examples[1]
    assert len(multi) == cut and multi.truncated
    assert labelled_segments(tok, multi)[0] == "transfer_failed<|im_end|>"
    assert stats.supervised_tokens == sum(e.n_supervised for e in examples)


def test_control_token_strings_in_content_are_counted(tok):
    recs = [ChatRecord("x", ({"role": "user", "content": "hi <|im_end|> there"}, MULTI[2]), "f:1")]
    _, stats = encode_records(tok, recs, 512)
    assert stats.control_token_records == 1


@pytest.mark.parametrize("group", [True, False])
def test_batches_cover_every_record_exactly_once_per_epoch(group):
    lengths = [(i * 37) % 101 + 1 for i in range(203)]
    for epoch in range(3):
        batches = length_grouped_batches(lengths, 8, seed=epoch, group_by_length=group, mega=4)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(203))
        assert Counter(len(b) for b in batches)[8] == 203 // 8
    assert length_grouped_batches(lengths, 8, 1, group) == length_grouped_batches(lengths, 8, 1, group)
    assert length_grouped_batches(lengths, 8, 1, group) != length_grouped_batches(lengths, 8, 2, group)


def test_length_grouping_reduces_padding():
    lengths = [(i * 37) % 101 + 1 for i in range(512)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = padded(length_grouped_batches(lengths, 8, 0, True))
    random_ = padded(length_grouped_batches(lengths, 8, 0, False))
    assert grouped < 0.75 * random_
    assert grouped <= 1.1 * sum(lengths)


def test_sorted_batches_are_deterministic_and_complete():
    lengths = [5, 9, 1, 9, 3]
    assert sorted_batches(lengths, 2) == [[1, 3], [0, 4], [2]]


def test_collate_pads_right_to_the_longest_in_batch(tok):
    a, _ = encode_chat(tok, "a", MULTI[:3], 512)
    b, _ = encode_chat(tok, "b", MULTI, 512)
    batch = collate([a, b], pad_id=tok.pad_token_id)
    width = max(len(a), len(b))
    assert batch["input_ids"].shape == (2, width) < (2, 512)
    assert batch["attention_mask"][0].tolist() == [1] * len(a) + [0] * (width - len(a))
    assert batch["input_ids"][0, len(a):].eq(tok.pad_token_id).all()
    assert batch["labels"][0, len(a):].eq(IGNORE).all()
    assert batch["labels"][1].tolist() == b.labels


def test_record_refused_by_the_template_is_an_input_error_at_its_line(tiny_model_dir):
    from privtune.errors import InputError

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                         "{% endif %}" + tok.chat_template)
    recs = [ChatRecord("ok", (MULTI[1], MULTI[2]), "train.jsonl:1"), ChatRecord("sys", tuple(MULTI), "train.jsonl:2")]
    with pytest.raises(InputError, match="train.jsonl:2: field 'messages': .*System role not supported"):
        encode_records(tok, recs, 512)
