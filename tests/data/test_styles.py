"""Text styles the chat-centred rules missed: application log lines and day-month-year dates with a month name."""

from __future__ import annotations

from privtune.data import recognizers as R
from privtune.data.redact import resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.4 and s.entity_type != R.NO_PERSON], text)
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
