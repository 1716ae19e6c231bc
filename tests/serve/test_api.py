"""The OpenAI client, unchanged, against a real privtune server on 127.0.0.1 serving the tiny llama + 2 adapters."""

from __future__ import annotations

import json
import re
import threading

import httpx
import openai
import pytest
from serve_helpers import running_server

from privtune.config import ServeConfig
from privtune.fsio import sha256_text
from privtune.serve.auth import add_key, revoke_key

HELLO = [{"role": "user", "content": "Please reset my online banking password."}]


def fake_redact(texts):
    """Stands in for Presidio: 'card' is the secret the guard must remove."""
    return [(t.replace("card", "[ACCOUNT]"), {"ACCOUNT": t.count("card")}) for t in texts]


@pytest.fixture(scope="module")
def api(tiny_served, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRIVTUNE_HOME", str(root / "home"))
        keys_file = root / "keys.json"
        keys = {
            "app": add_key(keys_file, "app", ["support"], "1000/min"),
            "all": add_key(keys_file, "all", ["*"], "1000/min"),
            "slow": add_key(keys_file, "slow", ["support"], "2/min"),
            "scraper": add_key(keys_file, "scraper", [], "1000/min", role="metrics"),
            "leaver": add_key(keys_file, "leaver", ["*"], "1000/min"),
        }
        cfg = ServeConfig(max_body_bytes=8192, max_prompt_tokens=200, request_log=str(root / "requests.jsonl"),
                          max_batch_size=8, default_max_tokens=16)
        with running_server(tiny_served, keys_file, cfg, redact_fn=fake_redact) as (url, state):
            yield {"url": url, "state": state, "keys": keys, "keys_file": keys_file, "root": root}


def client(api, key="all") -> openai.OpenAI:
    return openai.OpenAI(base_url=api["url"] + "/v1", api_key=api["keys"].get(key, key), max_retries=0, timeout=60)


def chat(api, key="all", model="support", **kw):
    kw.setdefault("messages", HELLO)
    kw.setdefault("max_tokens", 12)
    kw.setdefault("temperature", 0)
    return client(api, key).chat.completions.create(model=model, **kw)


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(api) -> str:
    r = httpx.get(api["url"] + "/metrics", headers={"Authorization": f"Bearer {api['keys']['scraper']}"})
    assert r.status_code == 200
    return r.text


# ------------------------------------------------------------------------------------------- auth / RBAC
def test_models_lists_only_what_the_key_may_use(api):
    assert [m.id for m in client(api, "app").models.list()] == ["support"]
    assert sorted(m.id for m in client(api, "all").models.list()) == ["legal", "model", "support"]
    assert client(api, "app").models.retrieve("support").id == "support"
    with pytest.raises(openai.NotFoundError):
        client(api, "app").models.retrieve("legal")


@pytest.mark.parametrize("token", ["", "sk-not-ours", "pt-00000000-nope"])
def test_missing_or_unknown_key_is_401_with_openai_error_body(api, token):
    r = httpx.post(api["url"] + "/v1/chat/completions", json={"model": "support", "messages": HELLO},
                   headers={"Authorization": f"Bearer {token}"} if token else {})
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        chat(api, key=api["keys"]["app"][:-2] + "xx")


def test_key_for_other_adapter_is_403_and_unknown_model_404(api):
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(api, key="app", model="legal")
    assert e.value.body["code"] == "model_not_allowed" and e.value.body["param"] == "model"
    with pytest.raises(openai.PermissionDeniedError):
        chat(api, key="app", model="model")  # the base is a model too, and needs permission
    with pytest.raises(openai.NotFoundError) as e:
        chat(api, model="nope")
    assert e.value.body["code"] == "model_not_found"


def test_roles_separate_inference_and_metrics(api):
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(api, key="scraper")
    assert e.value.body["code"] == "insufficient_role"
    r = httpx.get(api["url"] + "/metrics", headers={"Authorization": f"Bearer {api['keys']['app']}"})
    assert r.status_code == 403
    assert httpx.get(api["url"] + "/metrics").status_code == 401
    assert httpx.get(api["url"] + "/health").json()["status"] == "ok"  # probes need no key


def test_revoked_key_is_refused_without_restart(api):
    assert chat(api, key="leaver").choices[0].finish_reason in ("stop", "length")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRIVTUNE_HOME", str(api["root"] / "home"))
        revoke_key(api["keys_file"], "leaver")
    with pytest.raises(openai.AuthenticationError):
        chat(api, key="leaver")


def test_rate_limit_is_429_with_retry_after(api):
    chat(api, key="slow")
    chat(api, key="slow")
    with pytest.raises(openai.RateLimitError) as e:
        chat(api, key="slow")
    retry = int(e.value.response.headers["retry-after"])
    assert 1 <= retry <= 30  # 2/min refills one request every 30 s
    assert e.value.body["code"] == "rate_limit_exceeded"


# ---------------------------------------------------------------------------------------------- input
def test_body_and_prompt_too_large_are_413(api):
    headers = {"Authorization": f"Bearer {api['keys']['all']}"}
    big = {"model": "support", "messages": [{"role": "user", "content": "x" * 10_000}]}
    r = httpx.post(api["url"] + "/v1/chat/completions", json=big, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    long_prompt = [{"role": "user", "content": "card transfer failed twice " * 60}]  # < 8 KB, > 200 tokens
    with pytest.raises(openai.APIStatusError) as e:
        chat(api, messages=long_prompt)
    assert e.value.status_code == 413 and e.value.body["code"] == "prompt_too_large"


def test_malformed_json_is_400_and_bad_fields_422(api):
    headers = {"Authorization": f"Bearer {api['keys']['all']}", "Content-Type": "application/json"}
    r = httpx.post(api["url"] + "/v1/chat/completions", content=b'{"model": "support", "messages": [', headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.UnprocessableEntityError) as e:
        chat(api, temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.UnprocessableEntityError) as e:
        chat(api, messages=[{"role": "robot", "content": "hi"}])
    assert e.value.body["param"].startswith("messages[0].role")
    with pytest.raises(openai.BadRequestError) as e:
        chat(api, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    assert e.value.body["param"] == "tools"
    with pytest.raises(openai.BadRequestError) as e:
        chat(api, max_tokens=600)  # tiny model context is 512
    assert e.value.body["code"] == "context_length_exceeded"
    r = httpx.get(api["url"] + "/v1/nothing-here", headers=headers)
    assert r.status_code == 404 and "error" in r.json()


# ------------------------------------------------------------------------------------------ generation
def reference(served, adapter, messages, max_new_tokens):
    """Greedy text from HF generate on the same weights, one request alone (what batching must reproduce)."""
    import torch

    tok, model = served.tokenizers[adapter or served.base_name], served.model
    ids = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), return_tensors="pt",
              add_special_tokens=False)
    with torch.inference_mode():
        if adapter is None:
            with model.disable_adapter():
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=sorted(served.eos_ids), pad_token_id=served.pad_id)
        else:
            model.set_adapter(adapter)
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=sorted(served.eos_ids), pad_token_id=served.pad_id)
    new = out[0, ids["input_ids"].shape[1]:].tolist()
    new = new[:next((i for i, t in enumerate(new) if t in served.eos_ids), len(new))]
    return served.decode(new)


def test_greedy_answers_match_hf_generate_and_adapters_differ(api, tiny_served):
    prompts = [HELLO, [{"role": "user", "content": "Transfer failed twice, what happened?"}],
               [{"role": "system", "content": "Classify the ticket."}, {"role": "user", "content": "card_lost"}]]
    got = {m: tuple(chat(api, model=m, messages=p, max_tokens=10).choices[0].message.content for p in prompts)
           for m in ("support", "legal", "model")}
    assert len(set(got.values())) == 3  # each adapter changes the answers
    for m, texts in got.items():
        assert list(texts) == [reference(tiny_served, None if m == "model" else m, p, 10) for p in prompts]


def test_stream_is_openai_sse_and_equals_the_non_streamed_answer(api):
    whole = chat(api, max_tokens=14)
    chunks = list(chat(api, max_tokens=14, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    # the raw bytes: `data: {json}\n\n` events, ending with `data: [DONE]\n\n`
    body = {"model": "support", "messages": HELLO, "max_tokens": 5, "temperature": 0, "stream": True}
    with httpx.stream("POST", api["url"] + "/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {api['keys']['all']}"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_max_tokens_gives_length_and_exact_token_count(api):
    r = chat(api, max_tokens=7, logit_bias={"375": 100})  # token 375 is ' card' (never end of turn)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 7


def test_stop_sequences_cut_before_the_stop_text(api):
    full = chat(api, key="app", max_tokens=12, logit_bias={"375": 100}, model="support")
    assert full.choices[0].message.content.count("[ACCOUNT]") == 12  # guard on: 'card' redacted
    r = client(api).completions.create(model="support", prompt="Transfer", max_tokens=12, temperature=0,
                                       logit_bias={"375": 100}, stop=[" card card card"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == ""  # the first three ' card' tokens form the stop sequence
    r = client(api).completions.create(model="support", prompt="Transfer", max_tokens=12, temperature=0,
                                       logit_bias={"375": 50, "16": 100}, stop=["..."])
    assert r.choices[0].text == "" and r.choices[0].finish_reason == "stop"
    stream = client(api).completions.create(model="support", prompt="Transfer", max_tokens=12, temperature=0,
                                            logit_bias={"375": 100}, stop=["d car"], stream=True)
    pieces = list(stream)
    assert "".join(p.choices[0].text for p in pieces) == " car"  # the stop text can start inside a token
    assert pieces[-1].choices[0].finish_reason == "stop"


def test_output_guard_redacts_whole_and_streamed_answers(api):
    before = metric(scrape(api), "privtune_guard_redactions_total", model="legal", entity_type="ACCOUNT")
    r = chat(api, model="legal", max_tokens=5, logit_bias={"375": 100})
    assert r.choices[0].message.content == " [ACCOUNT]" * 5
    streamed = "".join(c.choices[0].delta.content or "" for c in chat(api, model="legal", max_tokens=5, stream=True,
                                                                        logit_bias={"375": 100}) if c.choices)
    assert streamed == " [ACCOUNT]" * 5 and "card" not in streamed
    after = metric(scrape(api), "privtune_guard_redactions_total", model="legal", entity_type="ACCOUNT")
    assert after - before == 10


def test_completions_endpoint_prompt_lists_and_n(api):
    r = client(api).completions.create(model="legal", prompt=["Transfer failed", "card"], max_tokens=4, n=2,
                                       temperature=0)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text and r.object == "text_completion"
    assert r.usage.completion_tokens == sum(1 for _ in r.choices) * 4 or r.usage.completion_tokens <= 16
    with pytest.raises(openai.BadRequestError):
        client(api).completions.create(model="legal", prompt="x", max_tokens=2, n=9)


def test_seed_makes_sampling_reproducible(api):
    a = chat(api, temperature=1.0, seed=7, max_tokens=12).choices[0].message.content
    b = chat(api, temperature=1.0, seed=7, max_tokens=12).choices[0].message.content
    c = chat(api, temperature=1.0, seed=8, max_tokens=12).choices[0].message.content
    assert a == b and a != c


def test_concurrent_streams_are_batched_and_each_matches_its_solo_answer(api, tiny_served):
    prompts = [[{"role": "user", "content": f"ticket {i}: card_lost transfer_failed"}] for i in range(12)]
    models = ["support", "legal", "model"]
    expected = [reference(tiny_served, None if models[i % 3] == "model" else models[i % 3], p, 12)
                for i, p in enumerate(prompts)]
    batches_before = metric(scrape(api), "privtune_batch_size_sum")
    steps_before = metric(scrape(api), "privtune_batch_size_count")
    results, errors = [None] * len(prompts), []

    def worker(i):
        try:
            stream = chat(api, model=models[i % 3], messages=prompts[i], max_tokens=12, stream=True)
            results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    # the fake guard would turn 'card' into '[ACCOUNT]'; compare against the same transformation
    assert results == [e.replace("card", "[ACCOUNT]") for e in expected]
    text = scrape(api)
    rows = metric(text, "privtune_batch_size_sum") - batches_before
    steps = metric(text, "privtune_batch_size_count") - steps_before
    assert rows / steps > 1.5  # requests really shared decode steps


def test_client_that_gives_up_frees_its_batch_rows(api, tiny_served):
    import copy
    import time

    slow = copy.copy(tiny_served)  # the same model, 20 ms a step, so the client surely gives up first
    slow.forward = lambda *args: (time.sleep(0.02), tiny_served.forward(*args))[1]
    cfg = ServeConfig(request_log=str(api["root"] / "slow.jsonl"), guard={"enabled": False})
    with running_server(slow, api["keys_file"], cfg) as (url, state):
        body = {"model": "support", "messages": HELLO, "max_tokens": 400, "temperature": 0}
        with pytest.raises(httpx.TimeoutException):
            httpx.post(url + "/v1/chat/completions", json=body, timeout=1.0,
                       headers={"Authorization": f"Bearer {api['keys']['all']}"})
        deadline = time.time() + 5
        while state.engine.active() and time.time() < deadline:
            time.sleep(0.05)
        assert state.engine.active() == 0  # long before the 8 s the answer would have taken
        time.sleep(0.2)
        (row,) = [json.loads(x) for x in (api["root"] / "slow.jsonl").read_text().splitlines()]
    assert row["status"] == 499 and row["code"] == "client_closed_request" and row["key"] == "all"


# ------------------------------------------------------------------------------------- metrics and log
def test_metrics_count_requests_tokens_and_errors_per_adapter(api):
    before = scrape(api)
    r = chat(api, model="legal", max_tokens=6)
    with pytest.raises(openai.NotFoundError):
        chat(api, model="nope")
    with pytest.raises(openai.PermissionDeniedError):
        chat(api, key="app", model="legal")
    after = scrape(api)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("privtune_requests_total", model="legal", endpoint="chat", status="200") == 1
    assert delta("privtune_completion_tokens_total", model="legal") == r.usage.completion_tokens
    assert delta("privtune_prompt_tokens_total", model="legal") == r.usage.prompt_tokens
    assert delta("privtune_errors_total", model="-", code="model_not_found") == 1
    assert delta("privtune_errors_total", model="legal", code="model_not_allowed") == 1
    assert delta("privtune_request_latency_seconds_count", model="legal", endpoint="chat") == 2
    assert "privtune_time_to_first_token_seconds_bucket" in after


def test_request_log_has_key_hash_and_counts_but_no_text(api, tiny_served):
    secret = "My IBAN is DE89370400440532013000, reset my card"
    msgs = [{"role": "user", "content": secret}]
    r = chat(api, key="app", messages=msgs, max_tokens=5)
    rows = [json.loads(line) for line in (api["root"] / "requests.jsonl").read_text().splitlines()]
    row = next(x for x in rows if x["id"] == r.id.removeprefix("chatcmpl-"))
    tok = tiny_served.tokenizers["support"]
    assert row["key"] == "app" and row["model"] == "support" and row["status"] == 200
    assert row["prompt_sha256"] == sha256_text(tok.apply_chat_template(msgs, tokenize=False,
                                                                       add_generation_prompt=True))
    assert row["prompt_tokens"] == r.usage.prompt_tokens and row["completion_tokens"] == r.usage.completion_tokens
    assert row["latency_ms"] > 0 and "prompt" not in row
    log_text = (api["root"] / "requests.jsonl").read_text()
    assert "DE89370400440532013000" not in log_text and not re.search(r"reset my card", log_text)
    assert any(x["status"] == 401 for x in rows)  # refused requests are logged too (without a key name)


def test_every_inference_request_is_in_the_audit_log_refused_ones_too(api, tiny_served):
    from privtune.registry import auditlog

    before = len([e for e in auditlog.entries() if e["action"] == "serve.request"])
    r = chat(api, key="app", messages=[{"role": "user", "content": "reset my card please"}], max_tokens=3)
    with pytest.raises(openai.PermissionDeniedError):
        chat(api, key="app", model="legal", max_tokens=3)
    rows = [e for e in auditlog.entries() if e["action"] == "serve.request"][before:]
    ok = next(e for e in rows if e["details"]["request_id"] == r.id.removeprefix("chatcmpl-"))
    assert ok["outcome"] == "ok" and ok["details"]["key"] == "app" and ok["details"]["adapter"] == "support"
    assert ok["inputs"]["adapter:support"] == tiny_served.adapters["support"].adapter_sha256
    assert ok["details"]["completion_tokens"] == r.usage.completion_tokens
    assert any(e["outcome"].startswith("refused 403") and e["details"]["adapter"] == "legal" for e in rows)
    assert "reset my card" not in json.dumps(rows)
    assert auditlog.verify().ok
