"""The batching engine on its own: same tokens as one-at-a-time generation, however requests are interleaved."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from privtune.serve.batching import (
    Delta,
    Engine,
    GenRequest,
    QueueFull,
    SamplingParams,
    find_stop,
    held_back,
    sample_next,
)

PROMPTS = ["Please reset my online banking password.", "Transfer failed twice, what happened?",
           "Hello, my name is Anna Smith.", "card_lost transfer_failed account_access fraud_report",
           "Classify the ticket. Answer with the label.", "yes no maybe 0 1 2 3"]


def test_stop_helpers():
    assert find_stop("abc STOP def", ["STOP", "de"]) == 4
    assert find_stop("abc", ["x"]) == -1 and find_stop("abc", []) == -1
    assert held_back("hello wor", ["world"]) == 3  # 'wor' may become 'world'
    assert held_back("hello", ["world"]) == 0
    assert held_back("caf\ufffd", []) == 1  # half a UTF-8 character waits for its other bytes


def _rows(*params):
    return [GenRequest([1], p, lambda d: None, generator=torch.Generator().manual_seed(0)) for p in params]


def test_sampling_greedy_seeded_top_p_and_bias():
    logits = torch.tensor([[0.0, 5.0, 4.9, -3.0]] * 3)
    greedy, hot, bias = _rows(SamplingParams(4, temperature=0), SamplingParams(4, temperature=1.0, top_p=0.01),
                              SamplingParams(4, temperature=0, logit_bias=((3, 100.0),)))
    assert sample_next(logits.clone(), [greedy, hot, bias]) == [1, 1, 3]  # top_p=0.01 keeps only the best
    a = _rows(SamplingParams(4, temperature=1.5, seed=3))[0]
    draws = [sample_next(logits[:1].clone(), [a])[0] for _ in range(30)]
    a2 = _rows(SamplingParams(4, temperature=1.5))[0]
    assert draws == [sample_next(logits[:1].clone(), [a2])[0] for _ in range(30)]  # same generator seed
    assert len(set(draws)) > 1
    rep = GenRequest([1], SamplingParams(4, temperature=0, presence_penalty=2.0), lambda d: None, ids=[1])
    assert sample_next(logits[:1].clone(), [rep]) == [2]  # token 1 was used: penalised below token 2


def _generate(served, engine, jobs, stagger=0.0):
    """Submit (adapter, prompt) jobs, return each one's full text and finish reason."""
    tok = served.tokenizers[served.base_name]
    results, done = {}, threading.Semaphore(0)

    def sink(i):
        parts = []

        def on_delta(d: Delta):
            parts.append(d.text)
            if d.finish_reason:
                results[i] = ("".join(parts), d.finish_reason, d.completion_tokens)
                done.release()
        return on_delta

    for i, (adapter, prompt, params) in enumerate(jobs):
        engine.submit(GenRequest(tok(prompt)["input_ids"], params, sink(i), adapter=adapter))
        time.sleep(stagger)
    for _ in jobs:
        assert done.acquire(timeout=120)
    return [results[i] for i in range(len(jobs))]


def _engine(served, **kw):
    return Engine(served.forward, served.decode, served.eos_ids, served.pad_id, served.max_context, **kw)


@pytest.mark.parametrize("batch,prefix_cache", [(8, 16384), (8, 0), (3, 16384)])
def test_batched_equals_one_at_a_time_for_every_adapter(tiny_served, batch, prefix_cache):
    greedy = SamplingParams(max_tokens=12, temperature=0)
    jobs = [(a, p, greedy) for p in PROMPTS for a in (None, "support", "legal")]
    solo = _engine(tiny_served, max_batch_size=1, prefix_cache_tokens=0)
    solo.start()
    try:
        expected = _generate(tiny_served, solo, jobs)
    finally:
        solo.stop()
    eng = _engine(tiny_served, max_batch_size=batch, prefix_cache_tokens=prefix_cache)
    eng.start()
    try:
        got = _generate(tiny_served, eng, jobs * 2, stagger=0.002)  # repeats: the prefix cache gets hits
    finally:
        eng.stop()
    assert got == expected * 2
    assert eng.steps < solo.steps  # rows really shared steps
    if prefix_cache:
        assert eng.prefix_cache.hits >= len(jobs)


def test_finish_reasons_and_token_counts(tiny_served):
    eng = _engine(tiny_served, max_batch_size=4)
    eng.start()
    try:
        (text, reason, n), = _generate(tiny_served, eng, [("support", PROMPTS[0],
                                                           SamplingParams(5, temperature=0,
                                                                          logit_bias=((375, 100.0),)))])
        assert (text, reason, n) == (" card" * 5, "length", 5)
        (text, reason, n), = _generate(tiny_served, eng, [("support", PROMPTS[0],
                                                           SamplingParams(9, temperature=0, stop=("d c",),
                                                                          logit_bias=((375, 100.0),)))])
        assert (text, reason) == (" car", "stop")
        eos = sorted(tiny_served.eos_ids)[0]
        (text, reason, n), = _generate(tiny_served, eng, [(None, PROMPTS[1], SamplingParams(
            9, temperature=0, logit_bias=((eos, 100.0),)))])
        assert (text, reason, n) == ("", "stop", 0)  # end of turn at once: nothing generated
    finally:
        eng.stop()


def test_queue_limit_and_shutdown_answer_every_request(tiny_served):
    eng = _engine(tiny_served, max_batch_size=1, max_queue=2)  # not started: nothing drains the queue
    got = []
    for _ in range(2):
        eng.submit(GenRequest([1, 2, 3], SamplingParams(4), got.append))
    with pytest.raises(QueueFull):
        eng.submit(GenRequest([1, 2, 3], SamplingParams(4), got.append))
    eng.start()
    eng.stop()
    assert all(d.finish_reason in ("length", "stop", "error") for d in got if d.finish_reason)


def test_cancelled_request_leaves_the_batch(tiny_served):
    eng = _engine(tiny_served, max_batch_size=4)
    eng.start()
    try:
        seen = []
        req = GenRequest([1, 5, 9], SamplingParams(400, temperature=0, logit_bias=((375, 100.0),)), seen.append)
        eng.submit(req)
        deadline = time.time() + 30
        while not seen and time.time() < deadline:
            time.sleep(0.01)
        req.cancelled = True
        time.sleep(0.2)
        assert eng.active() == 0 and len(req.ids) < 400
    finally:
        eng.stop()


def test_dora_adapters_batch_per_adapter(tiny_model_dir, tmp_path):
    from serve_helpers import make_run_dir

    from privtune.serve.loader import load_served

    runs = {"plain": make_run_dir(tiny_model_dir, tmp_path / "plain", seed=3),
            "dora": make_run_dir(tiny_model_dir, tmp_path / "dora", seed=4, use_dora=True)}
    served = load_served(runs)
    assert served.mixed is False  # PEFT cannot mix DoRA rows in one batch
    greedy = SamplingParams(max_tokens=8, temperature=0)
    jobs = [(a, p, greedy) for p in PROMPTS[:3] for a in ("plain", "dora", None)]
    solo = _engine(served, max_batch_size=1, mixed_adapters=False)
    solo.start()
    expected = _generate(served, solo, jobs)
    solo.stop()
    eng = _engine(served, max_batch_size=8, mixed_adapters=False)
    eng.start()
    got = _generate(served, eng, jobs, stagger=0.002)
    eng.stop()
    assert got == expected
    assert len({t for t, _, _ in expected[1::3]} | {t for t, _, _ in expected[2::3]}) > 1
