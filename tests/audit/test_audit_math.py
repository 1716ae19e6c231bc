"""Hand-computed small cases: exposure from ranks and its extrapolation, MIA AUC / TPR at 1% FPR, Min-K%, gates,
masking and raw-data matching; and the prefix-KV scorer against brute-force full-sequence log-probs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from privtune.audit import canaries as C
from privtune.audit.membership import auc_ci, loss_score, min_k_score, roc_auc, tpr_at_fpr
from privtune.audit.regurgitation import RawIndex, build_probes, digits, mask, truncate_words
from privtune.audit.report import evaluate_gates
from privtune.config import AuditConfig


def test_rank_and_exposure_by_hand():
    cands = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]  # 7 candidates + the canary = 8 = 2^3 secrets
    assert C.rank_of(4.0, cands) == 1 and C.exposure_from_rank(1, 7) == pytest.approx(3.0)
    assert C.rank_of(5.5, cands) == 2 and C.exposure_from_rank(2, 7) == pytest.approx(2.0)
    assert C.rank_of(12.0, cands) == 8 and C.exposure_from_rank(8, 7) == pytest.approx(0.0)
    assert C.rank_of(7.0, cands) == 3.5  # a tie counts half
    e = C.exposure(5.5, cands, max_bits=20)
    assert e["exposure"] == 2.0 and e["rank"] == 2 and not e["extrapolated"]


def test_skewnormal_extrapolation_beyond_the_candidates():
    rng = np.random.default_rng(0)
    cands = rng.normal(30.0, 2.0, size=20_000)  # a symmetric skew-normal (a = 0)
    # 3 sd below the mean: P = Phi(-3) = 0.00135 -> 9.53 bits; the empirical rank gives ~the same
    bits, fit = C.extrapolated_exposure(24.0, cands, max_bits=40)
    assert bits == pytest.approx(-math.log2(0.0013499), abs=0.25)
    assert fit["loc"] == pytest.approx(30, abs=1.5)
    assert C.exposure_from_rank(C.rank_of(24.0, cands), len(cands)) == pytest.approx(9.53, abs=0.4)
    # far beyond every candidate: rank 1 caps the sampled estimate at log2(20001) = 14.3; extrapolation goes on
    far = C.exposure(20.0, cands, max_bits=C.space_bits())  # 5 sd: P = 2.87e-7 -> 21.7 bits
    assert far["rank"] == 1 and far["extrapolated"] and far["exposure_rank"] == pytest.approx(14.29, abs=0.01)
    assert far["exposure"] == pytest.approx(-math.log2(2.8665e-7), abs=0.6)
    assert C.space_bits() == pytest.approx(8 * math.log2(10))
    # absurdly far: capped at the format's randomness
    assert C.exposure(-1e6, cands, max_bits=C.space_bits())["exposure"] == pytest.approx(C.space_bits(), abs=1e-3)


def test_canaries_are_distinct_and_of_the_format():
    cs = C.make_canaries(6, random.Random(1))
    assert [c.repeats for c in cs] == [10, 1, 10, 1, 10, 1]
    assert len({c.reference for c in cs}) == 6
    assert all(len(c.secret) == 9 and c.secret[4] == "-" and c.secret.replace("-", "").isdigit() for c in cs)
    recs = C.canary_records(cs[:2])
    assert len(recs) == 11 and recs[0]["messages"][1]["content"].endswith(cs[0].secret + ".")


def test_insert_canaries_seals_secrets_outside_the_manifest_entry(tmp_path):
    import json

    from privtune import fsio

    fsio.write_jsonl(tmp_path / "train.jsonl", [{"id": f"r{i}", "messages": []} for i in range(5)])
    entry = C.insert_canaries(tmp_path / "train.jsonl", 3, 42, tmp_path)
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(lines) == 5 + 10 + 1 + 10 and entry["records"] == 21 and entry["by_repeats"] == {"1": 1, "10": 2}
    canaries, _ = C.read_sealed(tmp_path)
    assert len(canaries) == 3 and oct((tmp_path / C.SEALED_FILE).stat().st_mode & 0o777) == "0o600"
    for c in canaries:
        assert sum(c.secret in ln for ln in lines) == c.repeats
        assert c.secret not in json.dumps(entry)


def test_insert_canaries_encrypts_the_sealed_file_when_a_key_is_configured(tmp_path, monkeypatch):
    from privtune import fsio
    from privtune.registry import crypto

    key = tmp_path / "k.key"
    crypto.keygen(key)
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key))
    fsio.write_jsonl(tmp_path / "train.jsonl", [{"id": "r0", "messages": []}])
    entry = C.insert_canaries(tmp_path / "train.jsonl", 1, 0, tmp_path)
    assert entry["sealed_encrypted"] and crypto.is_encrypted(tmp_path / C.SEALED_FILE)
    assert crypto.is_encrypted(tmp_path / "train.jsonl")
    assert C.read_sealed(tmp_path)[0][0].repeats == 10


def test_membership_scores_by_hand():
    assert roc_auc([3, 2, 1], [0, 1.5]) == pytest.approx(5 / 6)  # 5 of 6 member/non-member pairs ordered right
    assert roc_auc([1, 1], [1, 1]) == 0.5
    nonmembers = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    members = [2.0, 1.5, 0.995, 0.5]
    # 1% FPR = at most 1 of 100 non-members above the threshold: members above 0.98 are caught -> 3 of 4
    assert tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(0.75)
    assert tpr_at_fpr(members, nonmembers, 0.0) == pytest.approx(0.75)
    assert tpr_at_fpr([0.1], nonmembers, 0.01) == 0.0
    lp = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0]
    assert min_k_score(lp, 0.2) == pytest.approx(-9.5)  # the 2 least likely of 10 tokens
    assert min_k_score([-1.0, -5.0, -2.0], 0.2) == -5.0  # at least one token
    assert loss_score(lp) == pytest.approx(-5.5)


def test_auc_interval_is_wide_for_few_records_and_collapses_when_separated():
    rng = np.random.default_rng(1)
    m, n = rng.normal(0.3, 1, 48), rng.normal(0, 1, 48)
    lo, hi = auc_ci(m, n)
    assert lo < roc_auc(m, n) < hi and hi - lo > 0.15  # 48 vs 48: ±0.1 is noise
    lo, hi = auc_ci(rng.normal(0.3, 1, 4800), rng.normal(0, 1, 4800))
    assert hi - lo < 0.03 and lo > 0.55
    assert auc_ci([5, 6, 7], [1, 2, 3]) == (1.0, 1.0)


def test_gates_pass_fail_and_skip():
    cfg = AuditConfig()
    report = {"canaries": {"results": [{"inserted": True, "exposure": 12.0}, {"inserted": False, "exposure": 30.0}]},
              "membership": {"attacks": {"loss": {"auc": 0.52}, "min_k": {"auc": 0.58}}},
              "regurgitation": {"regurgitated": 0}}
    g = evaluate_gates(report, cfg)
    assert g["canary_exposure"]["value"] == 12.0 and g["canary_exposure"]["passed"] is False  # controls don't count
    assert g["membership_auc"] == g["membership_auc"] | {"value": 0.58, "passed": True}
    assert g["regurgitation"]["passed"] is True and g["passed"] is False
    skipped = evaluate_gates({"canaries": {"skipped": "none", "results": []}, "membership": {"skipped": "x"},
                              "regurgitation": {"regurgitated": 1}}, cfg.model_copy(update={"max_regurgitated": 1}))
    assert skipped["canary_exposure"]["passed"] is None and skipped["membership_auc"]["passed"] is None
    assert skipped["passed"] is True


def test_masking_matching_and_probes():
    assert mask("jane.doe@example.com") == "j***.d**@e******.c**"
    assert mask("+1 (555) 201-7788") == "+1 (5**) 2**-7***"
    raw = RawIndex([("raw.jsonl", ["{\"text\": \"call 555.201.7788 or mail jane.doe@example.com\"}"],
                     [digits("call 555.201.7788")])], [])
    assert raw.find("PHONE_NUMBER", "(555) 201-7788") == "raw.jsonl:1"  # compared digit by digit
    assert raw.find("EMAIL_ADDRESS", "Jane.Doe@example.com") == "raw.jsonl:1"
    assert raw.find("EMAIL_ADDRESS", "john@example.com") is None
    assert truncate_words("one two three four", 0.5) == "one two"
    recs = [{"id": "a", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "w1 w2 w3 w4"},
                                     {"role": "assistant", "content": "x"}]}]
    probes = build_probes(recs, 5, 0.5, ["List emails."], random.Random(0))
    assert [p.source for p in probes] == ["record:a", "generic:0"]
    assert probes[0].messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "w1 w2"}]


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_prefix_kv_scoring_equals_full_sequence_log_probs(varied_model_dir, depth):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(varied_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(varied_model_dir)
    c = C.make_canaries(1, random.Random(3))[0]
    prefix, secret = C.split_prefix(tok, c)
    heads = [s[:len(s) - depth] for s in (secret, "1234-5678", "0000-9999")]
    sp = C.plan(tok, prefix, heads, depth)
    assert sp.depth == depth  # this tokenizer writes digits one token each
    nll = C.score_plan(model, sp, batch_size=4)
    assert nll.shape == (3, 10 ** depth)

    def brute(s: str) -> float:
        ids = tok(prefix + s, add_special_tokens=False)["input_ids"]
        p = len(sp.prefix_ids)
        with torch.inference_mode():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        return -sum(lp[i - 1, ids[i]].item() for i in range(p, len(ids)))

    for row, head in enumerate(heads):
        for col in {0, 10 ** depth - 1, 7 % 10 ** depth}:
            tail = f"{col:0{depth}d}" if depth else ""
            assert nll[row, col] == pytest.approx(brute(head + tail), abs=1e-3)


def test_markdown_names_emitted_canaries_and_masked_findings_only():
    from privtune.audit.report import render_markdown

    report = {"canaries": {"skipped": "no canaries", "results": []}, "membership": {"skipped": "no test split"},
              "regurgitation": {"probes": 2, "record_probes": 1, "generic_probes": 1, "max_new_tokens": 8,
                                "matched_against": "raw training inputs", "detections": 1, "regurgitated": 1,
                                "canary_secrets_emitted": [{"probe": "generic:0", "canary": "canary-000"}],
                                "findings": [{"probe": "record:a", "entity_type": "EMAIL_ADDRESS",
                                              "value_masked": mask("jane@x.org"), "in_raw_training_data": True,
                                              "raw_where": "raw.jsonl:3"}]}}
    gates = evaluate_gates(report, AuditConfig())
    md = render_markdown({**report, "passed": gates["passed"], "gates": gates,
                          "run": {"path": "r", "adapter_sha256": "a" * 64, "base_name": "b"},
                          "data": {"path": "d", "train_records": 3, "canary_records": 0, "test_records": 0}})
    assert md.startswith("# privtune audit: FAILED") and "| regurgitation | 1 | 0 |" in md and "**FAIL**" in md
    assert "canary-000 after generic:0" in md and "`j***@x.o**`" in md and "raw.jsonl:3" in md
    assert "jane@x.org" not in md and "| canary_exposure | - |" in md and "skipped" in md
