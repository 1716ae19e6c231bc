"""Text styles the chat-centred rules missed: application log lines and day-month-year dates with a month name."""

from __future__ import annotations

from privtune.data import recognizers as R
from privtune.data.redact import resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.4 and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def test_log_line_user_and_session_values():
    line = "2024-05-14T09:12:44Z INFO auth: login ok user=mkowalski src=203.0.113.45 session=9f8e7d6c5b4a39281706"
    found = _found(line)
    assert ("mkowalski", "USERNAME") in found and ("203.0.113.45", "IP_ADDRESS") in found
    assert ("9f8e7d6c5b4a39281706", "API_KEY") in found
    assert _found("job done user=null status=ok session=3") == []  # no value, a short counter


def test_day_month_year_dates_with_a_month_name():
    assert _found("Policy holder DOB 12-Aug-1979, renewal due") == [("12-Aug-1979", "DATE_OF_BIRTH")]
    assert _found("admitted 03/MAR/2021 to ward 4") == [("03/MAR/2021", "DATE_TIME")]


def test_holders_and_initials_in_lower_case():
    names = [t for t, e in _found("Pls refund to the amex ending 1005, cardholder t. okoye") if e == "PERSON"]
    assert names == ["t. okoye"]
    assert [t for t, e in _found("the account holder: ngozi adeyemi") if e == "PERSON"] == ["ngozi adeyemi"]
    assert _found("the policy holder changed the address") == []


def test_other_languages_function_words_and_letter_formulas_are_not_names():
    assert R.not_a_name("Mit freundlichen Grüßen", 0, 23) and R.not_a_name("Ihre", 0, 4)
    assert not R.not_a_name("Jürgen Maier", 0, 12)
    words = R.foreign_function_words()
    assert "teléfono" in words and "sehr" in words and "maria" not in words  # name-list words are never dropped


def test_display_names_in_mail_headers():
    assert _found('From: "Okafor, Ngozi" <ngozi.okafor@lagosfin.example>') == [
        ("Okafor, Ngozi", "PERSON"), ("ngozi.okafor@lagosfin.example", "EMAIL_ADDRESS")]
    assert ("Anna Kowalski", "PERSON") in _found("To: Anna Kowalski <ak@example.org>")
    for header in ("From: Acme Billing <billing@acme.example>", "From: IT Support Team <desk@corp.example>"):
        assert [e for _, e in _found(header)] == ["EMAIL_ADDRESS"], header


def test_plates_after_a_plate_cue():
    assert ("KA 05 MN 1234", "VEHICLE_ID") in _found("Driver: Mohammed Al-Farsi | Plate: KA 05 MN 1234 | Route 17")


def test_a_name_its_mail_address_repeats_and_lower_case_titles():
    assert ("sunita", "PERSON") in _found("dear team, pls add sunita (sunita.rao@corp.example) to the channel")
    assert [e for _, e in _found("send it to the desk (helpdesk@corp.example) today")] == ["EMAIL_ADDRESS"]
    assert ("okonkwo", "PERSON") in _found("pt's husband, mr okonkwo, is the primary caregiver")


def test_passport_machine_readable_zone():
    line1 = "P<GBRSMITH<<JOHN<PETER<<<<<<<<<<<<<<<<<<<<<<<"
    line2 = "1234567897GBR8001014M3001012<<<<<<<<<<<<<<02"
    assert _found(f"MRZ:\n{line1}\n{line2}") == [(line1, "PASSPORT"), (line2, "PASSPORT")]


def test_several_fields_on_one_line_and_initial_dot_surname_logins():
    # the expiry is cardholder data next to a card (PCI DSS), though no identifier on its own
    assert _found("Name on card: KOFI A. MENSAH  Exp: 08/27") == [("KOFI A. MENSAH", "PERSON"), ("08/27", "CREDIT_CARD")]
    assert _found("Offer valid until 12/25 only") in ([], [("12/25", "DATE_TIME")])
    assert ("e.nakamura", "USERNAME") in _found("laptop assigned to e.nakamura (asset tag 22018) reported stolen")
    assert _found("culture grew e.coli and the config is in a.json") == []


def test_capitalised_names_after_kinship_words():
    assert ("Tyrell", "PERSON") in _found("pt accompanied by son (Tyrell) today")
    assert ("Marisol", "PERSON") in _found("his wife, Marisol, called twice")
    assert _found("my brother Will be there") == [] and _found("my Friend Request was denied") == []
