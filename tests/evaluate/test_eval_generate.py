"""Generation on the tiny model: left-padded batches give the unbatched greedy answers, in prompt order."""

from privtune.evaluate.generate import (
    cut_at_stop,
    generate,
    generate_detailed,
    left_pad,
    shared_prefix_len,
    stop_token_ids,
)

PROMPTS = [[{"role": "user", "content": c}] for c in (
    "reset my password", "The customer lost a card and needs a replacement. Please help quickly", "hi",
    "Transfer failed twice, what happened?", "yes no maybe", "card_lost fraud_report", "Hello, my name is",
    "Classify the ticket")]


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


def test_left_padded_batches_match_unbatched_greedy(varied_model_dir):
    model, tok = _load(varied_model_dir)
    one = generate_detailed(model, tok, PROMPTS, max_new_tokens=12, batch_size=1, show_progress=False)
    batched = generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=8, show_progress=False)
    uneven = generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=3, show_progress=False)
    assert batched == one.texts == uneven
    assert len(set(one.texts)) == len(PROMPTS)  # the answers differ, so order mistakes would show
    assert any(one.hit_limit) and not all(one.hit_limit)  # some stopped at <|im_end|>, some at the limit
    assert all(n <= 12 for n in one.new_tokens)
    assert all(t == t.strip() for t in one.texts)


def test_shared_system_prompt_is_computed_once_per_batch_with_identical_answers(varied_model_dir):
    model, tok = _load(varied_model_dir)
    system = {"role": "system", "content": "Classify the ticket. Answer with the label: card_lost or fraud_report."}
    prompts = [[system, *p] for p in PROMPTS]
    plain = generate_detailed(model, tok, prompts, max_new_tokens=10, batch_size=1, share_prefix=False,
                              show_progress=False)
    shared = generate_detailed(model, tok, prompts, max_new_tokens=10, batch_size=3, show_progress=False)
    assert plain.shared_prefix_tokens == 0 and shared.shared_prefix_tokens > 8 * len(prompts) // 2
    assert shared.texts == plain.texts and shared.hit_limit == plain.hit_limit


def test_shared_prefix_len_leaves_every_sequence_a_token_of_its_own():
    assert shared_prefix_len([list(range(20)), list(range(20)) + [7]], minimum=8) == 19
    assert shared_prefix_len([list(range(12)) + [1], list(range(12)) + [2]], minimum=8) == 12
    assert shared_prefix_len([list(range(5)) + [1], list(range(5)) + [2]], minimum=8) == 0  # too short to pay off
    assert shared_prefix_len([list(range(20))], minimum=8) == 0  # a batch of one has nothing to share


def test_left_pad_right_aligns_and_masks():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_cut_at_stop_drops_the_stop_token_and_padding_after_it():
    assert cut_at_stop([4, 5, 2, 0, 0], {2}) == ([4, 5], True)
    assert cut_at_stop([4, 5, 6], {2}) == ([4, 5, 6], False)


def test_stop_tokens_include_end_of_turn(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    stops = stop_token_ids(tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops
    assert tok.convert_tokens_to_ids("<|endoftext|>") in stops
