"""Lower-case names of payees, bookers and callers (chat and voice text), and the look-alikes that must stay."""

from __future__ import annotations

import pytest

from privtune.data import recognizers as R
from privtune.data.redact import resolve_spans

THRESHOLD = 0.4


def _persons(text: str) -> list[str]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= THRESHOLD and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [text[s.start:s.end] for s in spans if s.entity_type == "PERSON"]


@pytest.mark.parametrize(("text", "name"), [
    ("please send 40 euros to marisol quenneville tomorrow", "marisol quenneville"),
    ("why did my standing order to okonkwo fail last week", "okonkwo"),
    ("did I get the refund from tiberius vandermolen yet?", "tiberius vandermolen"),
    ("the table is booked under zebulon, can we make it 8 people", "zebulon"),
    ("we have a spa reservation under yolanthe brisbois for friday", "yolanthe brisbois"),
    ("my name is thaddeus ekwueme and my card is blocked", "thaddeus ekwueme"),
    ("hi, it's marguerite calling about the loan", "marguerite"),
    ("this is orlaith, I booked a double room", "orlaith"),
    ("quimby here, cancel my lunch booking please", "quimby"),
    ("I need to change my surname to vasquez-hollander", "vasquez-hollander"),
    ("can you open another account in the name of ottilie farquharson", "ottilie farquharson"),
    ("i owe oyelaran 50 dollars, pay him today", "oyelaran"),
    ("the card still does not work.\nthanks,\nfenwicke", "fenwicke"),
    ("ok will try again tomorrow. regards, ilsabeth novotna", "ilsabeth novotna"),
    ("her son jayden was also on the policy", "jayden"),
    ("my flatmate okechukwu paid the deposit", "okechukwu"),
])
def test_lower_case_names_after_payment_booking_and_greeting_cues(text, name):
    assert _persons(text) == [name]


@pytest.mark.parametrize("text", [
    "please transfer 200 euros to my savings account",
    "I want to go to tamworth on saturday",  # no money moves: a place, not a payee
    "the patient was transferred to nephrology overnight",  # a department (suffix), not a person
    "a dark streak under the nail bed",  # "under" without a booking
    "can I pay contactless at the station",
    "it's gona rain tomorrow so move my booking",  # a typo of a common word after "it's"
    "how much do I still owe to peopel",  # a typo of "people"
    "what happened to my payment to waitrose",  # a lone brand is about as common as this
    "a payment of 30 dollars to zanzibari grill restaurant",  # a business word follows
    "transfer the rest to wyndhamshire.co.uk",  # a domain
    "Thank you, I'm looking forward to the appointment",  # a contraction after a strong cue
    "Thank you, I'll call back later",
    "thanks, gona try that now",  # a sign-off name ends its line
    "my wife called about the statement",
    "her husband said the card was stolen",
])
def test_words_after_cues_that_are_not_names(text):
    assert _persons(text) == []


def test_month_abbreviations_next_to_numbers_are_not_lone_first_names():
    assert _persons("I'd like to postpone the loan to Sep 17.") == []
    assert _persons("arriving on the 5th of Jan, leaving the 9th") == []
    assert _persons("Jan Kowalski called on Monday") == ["Jan Kowalski"]  # a first name with a surname still is


def test_word_frequency_and_typo_checks():
    assert R.zipf("the") > 7 and R.zipf("kawamoto") < R.RARE_ZIPF
    assert R.typo_of_common("peopke", 5.5) and R.typo_of_common("ridicoulous", 4.4)
    assert not R.typo_of_common("okonkwo", 4.4)


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= THRESHOLD and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def test_capitalised_payee_names_after_money_cues():
    assert _persons("Please wire 4,500 EUR to Odessa Wintheiser today.") == ["Odessa Wintheiser"]
    assert _persons("a standing order for 20 pounds to Quilla Brannagh") == ["Quilla Brannagh"]
    for text in ("the payment to American Express failed", "transfer 30 dollars to Sztur Elektron Ltd",
                 "I want to go to Quilla Brannagh next week",  # no money moves
                 "send 10 euros to Central Bank"):
        assert _persons(text) == [], text


def test_handles_passwords_and_plural_street_types():
    assert _found("Hi Nelson_Kuhic52, welcome back") == [("Nelson_Kuhic52", "USERNAME")]
    assert _found("user agent Mozilla/5.0 logged in as kunze.vada from home") == [("kunze.vada", "USERNAME")]
    assert _found("the label card_lost and loan_inquiry") == []  # snake_case labels are not handles
    assert _found("reset VPN access for user jmcallister today") == [("jmcallister", "USERNAME")]
    assert _found("the user reported that the user interface froze") == []
    assert ("xZ1l8yQ", "PASSWORD") in _found("your password was reset to xZ1l8yQ yesterday")
    assert _found("ship it to 88193 Kirlin Mills, Apt. 412 please")[0] == ("88193 Kirlin Mills, Apt. 412", "STREET_ADDRESS")
