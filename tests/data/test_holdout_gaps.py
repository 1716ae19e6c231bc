"""Gaps that a hand-written held-out set showed (hospital and HR letters, bank and shop chats, IT tickets and configs
in several languages, written by someone who had not seen privtune's rules): template values, logins in logs,
order numbers read as phones, identifiers named in other languages, chat speakers, other-language prose as names."""

from __future__ import annotations

import pytest

from privtune.data import recognizers as R
from privtune.data.redact import foreign_phrase, resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.5 and s.entity_type != R.NO_PERSON], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def _types(text: str) -> set[str]:
    return {t for _, t in _found(text)}


@pytest.mark.parametrize("text", [
    "kubectl create secret generic redis-auth --from-literal=password=<NEW_PASSWORD> --dry-run=client",
    "DB_PASSWORD=${DB_PASS}",
    "password: ${{ secrets.PROD_PW }}",
    "vault_token: {{ vault_token }}",
    "redis-cli -h redis.cache.svc -a $REDIS_PASSWORD ping",
    "password: ********",
    "your password (optional)",
])
def test_a_template_or_masked_value_is_no_secret(text):
    # the first one crashed the key=value reader (nothing left of the value after the placeholder check)
    assert not _types(text) & {"PASSWORD", "API_KEY", "USERNAME"}


@pytest.mark.parametrize("text, secret", [
    ("Temporary password issued: Tq7#mZ2!pL - user must change it", "Tq7#mZ2!pL"),
    ("Your temporary access pass is 7Qx-KP9m-2LtR (valid 8 hours).", "7Qx-KP9m-2LtR"),
    ("asked for his memorable word ('buttercup') and a code", "'buttercup'"),
    ("and a passcode, 739104, sent by text", "739104"),
    ("[ldap]\nbind_pw = 8u!Lk#3zPqW\nserver = ldaps://10.12.0.8", "8u!Lk#3zPqW"),
    ("password=hunter2x", "hunter2x"),  # a real value next to the template forms above
])
def test_secrets_in_more_phrasings(text, secret):
    assert (secret, "PASSWORD") in _found(text)


@pytest.mark.parametrize("text, login", [
    ("DB_URL=postgres://billing_svc:Tr0ub4dor&3xK@10.20.4.17:5432/billing", "billing_svc"),
    ("bind_dn = cn=svc_ldap_ro,ou=service,dc=example,dc=local", "svc_ldap_ro"),
    ("sshd[22901]: Accepted publickey for aokafor from 10.8.0.14 port 60211 ssh2", "aokafor"),
    ('203.0.113.45 - jmartinez [12/Mar/2024:09:14:22 +0000] "GET /api HTTP/1.1" 200', "jmartinez"),
    ("My account rdeshpande got locked after three tries", "rdeshpande"),
    ("new build server, user: builder, pass: Hanoi@2024#bld.", "builder"),
])
def test_logins_in_connection_strings_logs_and_directories(text, login):
    assert (login, "USERNAME") in _found(text)


def test_shared_system_accounts_and_broadcast_mentions_are_no_one():
    assert "USERNAME" not in _types("sshd[811]: Failed password for root from 198.51.100.7 port 22")
    assert "USERNAME" not in _types("redis_url: redis://<user>:<password>@cache:6379")
    assert _found("@channel heads up: the deploy is frozen, @here too") == []
    assert ("kwame.o", "USERNAME") in _found("@channel ask @kwame.o")


@pytest.mark.parametrize("text", [
    "Customer: hello, my order 5829104471 arrived broken",
    "Please find PO 4500188213 attached for 12 pallets.",
    "Thank you for shopping with us. Receipt 0412-887-20391.",
    "Zwrot zamówienia Allegro 9911827364 – klient prosi o zwrot",
    "ich möchte die Jacke aus Bestellung 73920114 zurückgeben",
    "3 containers (MSCU 4481920, TGHU 7720115) ship on Friday",
    "under the Working Time Regulations 1998 (SI 1998/1833).",
    "Ref TXN 0098812277.",
])
def test_order_reference_and_registry_numbers_are_no_phones(text):
    assert "PHONE_NUMBER" not in _types(text)


def test_a_phone_after_an_order_word_with_a_phone_cue_is_still_a_phone():
    assert ("07700 900123", "PHONE_NUMBER") in _found("Order ref: call 07700 900123 about it")
    assert ("020 7946 0958", "PHONE_NUMBER") in _found("my order is late, ring 020 7946 0958")


@pytest.mark.parametrize("text, value, etype", [
    ("Meine Versicherungsnummer lautet KFZ-4471-88213.", "KFZ-4471-88213", "INSURANCE_ID"),
    ("N° de contrat : MAAF-AUTO-7781204", "MAAF-AUTO-7781204", "INSURANCE_ID"),
    ("en relación con la póliza de hogar nº HG-771-204598. El titular", "HG-771-204598", "INSURANCE_ID"),
    ("Versicherten-Nr.: K204817553\nKrankenkasse: AOK", "K204817553", "INSURANCE_ID"),
    ("Authorisation code: PA-55810273", "PA-55810273", "INSURANCE_ID"),
    ("Mr Arvind Sharma, 58 yrs, UHID: KMH-2210-88341", "KMH-2210-88341", "MEDICAL_RECORD"),
    ("DOB: 1975-06-30   HOSP NO: RX4471920   ALLERGIES: NKDA", "RX4471920", "MEDICAL_RECORD"),
    ("his mrn for lab: 00417729.", "00417729", "MEDICAL_RECORD"),
    ("Subject: Repeat LFTs - NHI ZAC5361", "ZAC5361", "MEDICAL_RECORD"),
    ("card lost in Da Nang. CCCD 001188012345 verified against file.", "001188012345", "NATIONAL_ID"),
    ("Schichtleiter: Jürgen Becker (Pers.-Nr. 100452)", "100452", "EMPLOYEE_ID"),
    ("Sebastian Krüger (Personalnummer 20-3318) shall not", "20-3318", "EMPLOYEE_ID"),
    ("Fernando Ramírez, licencia federal LFD-0928371", "LFD-0928371", "DRIVER_LICENSE"),
    ("Placas (vehículo propio): JKL-48-92", "JKL-48-92", "VEHICLE_ID"),
    ("Other party: Anil Gowda, plate KA-01-HX-9032.", "KA-01-HX-9032", "VEHICLE_ID"),
    ("parkte seinen Privat-Pkw (Kennzeichen S-MD 4471) auf", "S-MD 4471", "VEHICLE_ID"),
    ("this is rahul, upi id rverma1990@okicici", "rverma1990@okicici", "ID_NUMBER"),
    ("IKEA Family member: 6275 9800 4412 7763. Served by: Olu.", "6275 9800 4412 7763", "CUSTOMER_ID"),
])
def test_identifiers_named_in_other_languages_and_registries(text, value, etype):
    assert (value, etype) in _found(text)


def test_a_chinese_resident_id_needs_its_check_digit():
    assert R.cn_resident_id_ok("11010519491231002X") and R.cn_resident_id_ok("310104198807152348")
    assert ("310104198807152348", "NATIONAL_ID") in _found("ID card on file: 310104198807152348.")
    assert "NATIONAL_ID" not in _types("batch 310104198807152349 shipped")  # one digit off, no cue


def test_plate_and_contract_cues_need_an_identifier_shape():
    assert _found("see plate 3 of figure 2; plate tectonics since 2024") == []
    assert _found("le contrat 2024 prévoit une hausse") == []


def test_chat_speakers_no_list_knows_are_people():
    chat = ("ngozi: morning!! anyone know the wifi pw?\nbabatunde: ask in the office channel\n"
            "ngozi: ta, will do\nbabatunde: raise a ticket then")
    assert {v for v, t in _found(chat) if t == "PERSON"} == {"ngozi", "babatunde"}
    dispatch = "kofi: stuck at the gate\ndispatch: whats ur reg\nkofi: on the list?\ndispatch: ask kofi again"
    assert [v for v, t in _found(dispatch) if t == "PERSON"] == ["kofi"] * 3
    # form fields, log levels and config keys are no speakers
    for text in ("Allergies: none known\nWard: bay seven\nConsultant: on leave",
                 "error: disk is full\nwarn: retry in five\ninfo: all good now",
                 "apiversion: apps v1\nkind: Deployment here\nmetadata: name here",
                 "Anforderung: kleines Blutbild\nEinsender: die Praxis\nKrankenkasse: die AOK"):
        assert "PERSON" not in _types(text), text


@pytest.mark.parametrize("phrase", ["Damen und Herren", "Dzień dobry", "Proszę", "Endereço de entrega",
                                    "Guten Tag", "Nennen Sie", "Solicito la baja", "de contacto", "Jacke aus"])
def test_other_language_prose_is_no_name(phrase):
    assert foreign_phrase(phrase)


@pytest.mark.parametrize("name", ["Segun", "Beto", "Vader", "Mei", "Del", "Al-Farsi", "Santos", "Lê Quang Huy",
                                  "Hiroshi Yamamoto", "Kasia Nowak", "ED", "Maria de la Cruz"])
def test_names_that_are_also_foreign_words_stay_names(name):
    assert not foreign_phrase(name)


def test_german_letter_phrases_are_not_redacted_as_people():
    from privtune.data.redact import Redactor

    text = ("Sehr geehrte Damen und Herren,\nmein Name ist Jonas Reinhardt. Nennen Sie mir bitte den Termin.\n"
            "Mit freundlichen Grüßen")
    out, counts = Redactor().redact_texts([text])[0]
    assert "Damen und Herren" in out and "Nennen Sie" in out and "Jonas Reinhardt" not in out
    assert counts.get("PERSON") == 1
