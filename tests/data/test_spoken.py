"""Call transcripts: dates and numbers spelled out by speech-to-text, typed by the cue word nearest to them."""

from __future__ import annotations

from privtune.data import recognizers as R
from privtune.data.redact import keep_detection, resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.4 and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def test_spoken_numbers_are_typed_by_the_nearest_cue():
    assert _found("my zip is three oh three one eight and my phone is four oh four, five five five, one two one two") == [
        ("three oh three one eight", "POSTCODE"), ("four oh four, five five five, one two one two", "PHONE_NUMBER")]
    assert _found("card number four five three nine one four eight eight zero three four three six four six seven") == [
        ("four five three nine one four eight eight zero three four three six four six seven", "CREDIT_CARD")]
    assert _found("social is one two three, four five, six seven eight nine")[0][1] == "US_SSN"
    assert _found("you can reach me on oh seven seven double nine one two three four five six")[0][1] == "PHONE_NUMBER"


def test_short_or_uncued_number_words_stay():
    for text in ("Press one for sales, two for support, or stay on the line.",
                 "we need two or three more weeks, maybe four or five",
                 "one two three four five six seven, here we go"):  # no cue word
        assert _found(text) == [], text


def test_spoken_dates_and_birth_dates():
    assert _found("date of birth? sure, march third nineteen eighty-two") == [
        ("march third nineteen eighty-two", "DATE_OF_BIRTH")]
    assert _found("I was born on the twenty-first of June") == [("the twenty-first of June", "DATE_OF_BIRTH")]
    assert _found("the hearing is on the fifth of May, two thousand and twenty-four") == [
        ("the fifth of May, two thousand and twenty-four", "DATE_TIME")]
    # a spelled-out day and month pins a date like digits do; a weekday alone does not
    assert keep_detection("DATE_TIME", "the fifth of June") and not keep_detection("DATE_TIME", "last Friday")
