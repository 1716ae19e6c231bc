"""Metrics on hand-computed cases: no model, milliseconds."""

import pytest

from privtune.evaluate import metrics as m
from privtune.evaluate.compare import compare, group_by_category

LABELS = ["account_access", "card_lost", "fraud_report"]


# ------------------------------------------------------------------------------------------ text
@pytest.mark.parametrize("pred, ref, expected", [
    ("Card_Lost.", "card lost", 1.0),           # case, punctuation, `_` as a space
    ("  The  answer ", "answer", 1.0),          # articles and whitespace
    ("Überweisung!", "überweisung", 1.0),       # Unicode casefold
    ("card lost", "card stolen", 0.0),
    ("", "", 1.0),
])
def test_exact_match_after_normalisation(pred, ref, expected):
    assert m.exact_match(pred, ref) == expected


def test_token_f1_is_squad_bag_of_tokens():
    # pred {cat, sat} vs ref {cat, sat, down}: P = 2/2, R = 2/3 -> F1 = 0.8 (articles dropped)
    assert m.token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # a repeated token matches once: pred [x x y], ref [x z]: common 1, P 1/3, R 1/2 -> 0.4
    assert m.token_f1("x x y", "x z") == pytest.approx(0.4)
    assert m.token_f1("nothing shared", "at all") == 0.0
    assert m.token_f1("", "something") == 0.0
    assert m.token_f1("", "") == 1.0


def test_rouge_l_known_pair_and_unicode():
    # LCS("the cat sat on the mat", "the cat was on the mat") = 5 of 6 tokens each side -> F = 5/6
    assert m.rouge_l(["the cat sat on the mat"], ["the cat was on the mat"]) == [pytest.approx(5 / 6)]
    # rouge-score's default tokenizer drops non-ASCII words; ours keeps them
    assert m.rouge_l(["Überweisung fehlgeschlagen"], ["Überweisung fehlgeschlagen heute"]) == [pytest.approx(0.8)]
    assert m.rouge_l([""], [""]) == [1.0]


def test_bleu_scale_is_sacrebleus_0_to_100():
    sents = ["the transfer failed twice yesterday evening", "please reset my online banking password now"]
    assert m.bleu(sents, sents) == pytest.approx(100.0)
    assert m.bleu(["card_lost", "yes"], ["card_lost", "yes"]) == pytest.approx(100.0)  # short outputs too
    assert m.bleu(["completely different words here"], ["the transfer failed twice yesterday"]) == 0.0
    assert 0.0 < m.bleu(["the cat sat on a mat"], ["the cat sat on the mat"]) < 100.0


# ----------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("pred, expected", [
    ("card_lost", "card_lost"),
    ("The answer is: Card_Lost.", "card_lost"),
    ("Category: \"fraud report\"", "fraud_report"),
    ("Label = ACCOUNT-ACCESS", "account_access"),
    ("card lost", "card_lost"),                      # decided: spaces and hyphens are the label's separators
    ("'card_lost'\nBecause the customer says so.", "card_lost"),
    ("I think this is card_lost, clearly", "card_lost"),  # exactly one label inside, as whole words
    ("card_lost or fraud_report", m.OTHER),         # two labels: ambiguous
    ("cardlost", m.OTHER),                          # not a whole-word match
    ("no idea", m.OTHER),
    ("", m.OTHER),
])
def test_to_label(pred, expected):
    assert m.to_label(pred, LABELS) == expected


def test_to_label_prefers_longest_of_nested_labels_and_keeps_wrapper_words_in_labels():
    assert m.to_label("my card lost yesterday", ["card", "card_lost"]) == "card_lost"
    assert m.to_label("class_a", ["class_a", "class_b"]) == "class_a"  # "class" is a wrapper word, not here
    assert m.to_label("Answer: yes", ["yes", "no"]) == "yes"


def test_label_task_detection():
    assert m.is_label_task(["yes", "no", "yes", "no", "no", "yes"])
    assert m.is_label_task(["card_lost"] * 4 + ["fraud_report"] * 5 + ["Account Access"] * 3)  # 3 <= 12/3
    assert not m.is_label_task(["a", "b", "c", "d", "e", "f"])                      # 6 distinct > 6/3
    assert not m.is_label_task(["this answer has five words"] * 9)                  # > 4 words
    assert not m.is_label_task(["x" * 41] * 9)                                      # > 40 chars
    assert not m.is_label_task(["yes", "no", "", "yes"])                            # empty is not a label
    assert m.is_label_task(["yes", "no"])                                           # max(2, n/3) for tiny n
    assert not m.is_label_task([])
    assert m.label_set(["Card Lost", "card_lost", "fraud-report"]) == ["card_lost", "fraud_report"]


def test_accuracy_and_macro_f1_count_unknown_predictions_as_wrong():
    preds = ["card_lost", "The answer is fraud_report", "no idea", "fraud_report"]
    refs = ["card_lost", "card_lost", "fraud_report", "fraud_report"]
    s = m.score(preds, refs, labels=["card_lost", "fraud_report"])
    assert s["accuracy"] == pytest.approx(0.5)
    # card_lost: TP 1, FN 1, FP 0 -> F1 2/3; fraud_report: TP 1, FN 1, FP 1 -> F1 1/2; <other> not averaged
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s["exact_match"] == pytest.approx(0.5)
    assert set(s) == {"exact_match", "token_f1", "rouge_l", "bleu", "accuracy", "macro_f1"}
    assert all(0.0 <= v <= 1.0 for k, v in s.items() if k != "bleu")


def test_free_text_score_has_no_label_metrics():
    s = m.score(["the cat sat"], ["the cat sat"])
    assert set(s) == {"exact_match", "token_f1", "rouge_l", "bleu"}
    assert s["exact_match"] == s["token_f1"] == s["rouge_l"] == 1.0


def test_confusion_rows_are_references_with_other_column():
    mat = m.confusion(["card_lost", m.OTHER, "card_lost"], ["card_lost", "fraud_report", "fraud_report"],
                      ["card_lost", "fraud_report"])
    assert mat == [[1, 0, 0], [1, 0, 1], [0, 0, 0]]


# ---------------------------------------------------------------------------------------- compare
def test_compare_delta_categories_and_confusion():
    refs = ["card_lost", "card_lost", "fraud_report", "fraud_report"]
    outputs = {"tuned": ["card_lost", "card_lost", "fraud_report", "nope"],
               "base": ["hello", "card_lost", "nope", "nope"]}
    cats = ["cards", "cards", "fraud", None]
    out = compare(refs, outputs, cats, labels=["card_lost", "fraud_report"])
    assert out["tuned"]["accuracy"] == pytest.approx(0.75) and out["base"]["accuracy"] == pytest.approx(0.25)
    assert out["delta"]["accuracy"] == pytest.approx(0.5)
    assert set(out["by_category"]) == {"cards", "fraud", "(none)"}
    assert out["by_category"]["cards"]["n"] == 2
    assert out["by_category"]["cards"]["tuned"]["accuracy"] == 1.0
    assert out["by_category"]["cards"]["base"]["accuracy"] == 0.5
    assert out["confusion"]["labels"] == ["card_lost", "fraud_report", m.OTHER]
    assert out["confusion"]["tuned"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert group_by_category([None, None]) == {}
