"""Gaps that a hand-written held-out set showed (hospital and HR letters, bank and shop chats, IT tickets and configs
in several languages, written by someone who had not seen privtune's rules): template values, logins in logs,
order numbers read as phones, identifiers named in other languages, chat speakers, other-language prose as names."""

from __future__ import annotations

import pytest

from privtune.data import recognizers as R
from privtune.data.redact import foreign_phrase, resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.5 and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
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


def test_a_chat_speaker_is_redacted_though_the_word_is_also_dutch_slang(redactor):
    text = "kofi: stuck at the gate\ndispatch: whats ur reg\nkofi: cheers, see you"
    assert redactor.redact_texts([text])[0][0] == (
        "[PERSON]: stuck at the gate\ndispatch: whats ur reg\n[PERSON]: cheers, see you")


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


HL7 = ("MSH|^~\\&|EPICADT|MERCYHOSP|LABSYS|MERCYLAB|20240612083015||ADT^A04|MSG00417|P|2.5.1\n"
       "EVN|A04|20240612083015\n"
       "PID|1||MRN48812093^^^MERCY^MR||Okonkwo-Hale^Tobias^^||19780923|M|||4410 Larkspur Ln^^Columbus^OH^43214^USA||"
       "(614)555-0172^PRN^PH||||M||||412-55-8093\n"
       "NK1|1|Okonkwo-Hale^Adaeze|SPO|4410 Larkspur Ln^^Columbus^OH^43214|(614)555-0199\n"
       "PV1|1|O|ER^^^MERCY||||1234^Whitfield^Anne|||||||||||V")


def test_hl7_fields_say_what_they_hold():
    found = set(_found(HL7))
    assert {("MRN48812093", "MEDICAL_RECORD"), ("Okonkwo-Hale", "PERSON"), ("Tobias", "PERSON"),
            ("19780923", "DATE_OF_BIRTH"), ("4410 Larkspur Ln", "STREET_ADDRESS"), ("43214", "POSTCODE"),
            ("(614)555-0172", "PHONE_NUMBER"), ("412-55-8093", "US_SSN"), ("Adaeze", "PERSON"),
            ("(614)555-0199", "PHONE_NUMBER"), ("Whitfield", "PERSON"), ("Anne", "PERSON")} <= found
    # message timestamps are no phones or cards, and the sending systems are no one
    assert not {v for v, _ in found} & {"20240612083015", "EPICADT", "MERCYHOSP", "Columbus"}


@pytest.mark.parametrize("text", [
    "sku,gtin,name\nTX-4410-BLK,4006381333931,Thermo mug 450 ml",  # EAN-13 with its check digit
    "EVN|A01|20240815141203",
    "2024-10-02 job=nightly-reindex status=finished docs=2188401 duration_s=892.9",
    '{"order_id": 5829104471, "status": "shipped"}',
])
def test_barcodes_timestamps_and_counts_are_no_phones_or_cards(text):
    assert not _types(text) & {"PHONE_NUMBER", "CREDIT_CARD"}


def test_numbers_under_phone_keys_and_with_a_plus_are_still_phones():
    assert ("+44 7700 900123", "PHONE_NUMBER") in _found('{"contact": "+44 7700 900123"}')
    assert ("4155550172", "PHONE_NUMBER") in _found("phone=4155550172")
    assert ("4006381333932", "PHONE_NUMBER") not in _found("barcode 4006381333932")  # a bad check digit: unknown
    assert R.gtin_ok("4006381333931") and not R.gtin_ok("4006381333932")


@pytest.mark.parametrize("text, name", [
    ("Hi, it's Gwendolyn Marsh, last name M A R S H.", "M A R S H"),
    ("The surname is A D E Y E M I, hyphen, B A K A R E.", "A D E Y E M I, hyphen, B A K A R E"),
    ("Hey Sipho 👋 love that you're also into hiking", "Sipho"),
    ("Howzit bru, it's Thabo. Lost my phone at the braai", "Thabo"),
    ("Please ring Siobhán on 087 214 6630 or drop into the club", "Siobhán"),
    ("tapos pakisabi kay kuya Jomar na dalhin yung videoke", "Jomar"),
    ("agar Zubair bhai ne paise bhejne hain", "Zubair"),
    ("Suzuki-san, the staging DB password rotates tonight", "Suzuki"),
    ("Any1 need a lift from the club text me 085 331 7724 — Mossie", "Mossie"),
    ("ya same bro mine also wrong 21BCE1187 😭 - arjun", "arjun"),
])
def test_names_after_greetings_honorifics_spelling_and_dash_signatures(text, name):
    assert (name, "PERSON") in _found(text)


@pytest.mark.parametrize("text", ["Steps:\n- open the app - Settings", "it is Monday.", "Hi Team, the release is out",
                                  "the results - Summary", "Rated A B C by the panel"])
def test_list_dashes_weekdays_and_letter_grades_are_no_names(text):
    assert "PERSON" not in _types(text)


@pytest.mark.parametrize("text, value, etype", [
    ("Posted by: wyndo_dj82\n\nHi all, switched providers", "wyndo_dj82", "USERNAME"),
    ("What would you do? - posted as NotYourDoormat23", "NotYourDoormat23", "USERNAME"),
    ("u/throwaway_mike88 · 3h", "throwaway_mike88", "USERNAME"),
    ("he texts you on Snapchat (kojo_vibez233) pls run", "kojo_vibez233", "USERNAME"),
    ("my IGN was xSh4d0wRaj and my UID is long", "xSh4d0wRaj", "USERNAME"),
    ("wifi pass is Dq4fTnvL9pHx (ill change it after)", "Dq4fTnvL9pHx", "PASSWORD"),
    ("Send USDT TRC20 to TQ7mVz3kP8rYx2nWbLfH9aJcE4uD6sG1oK. Withdrawal in 24hrs", "TQ7mVz3kP8rYx2nWbLfH9aJcE4uD6sG1oK",
     "CRYPTO"),
    ("address confirm karo - 5th Cross, Malleshwaram, Bengaluru - 560003. venue", "560003", "POSTCODE"),
    ("Entrega en Calle Río Lerma 245, Col. Cuauhtémoc, C.P. 06500, CDMX", "06500", "POSTCODE"),
    ("17 Ashgrove Terrace\nDouglas, Cork T12 X5P8", "T12 X5P8", "POSTCODE"),
    ("Mietsache: 3. OG links, Schönhauser Allee 131, 10437 Berlin", "Schönhauser Allee 131, 10437 Berlin",
     "STREET_ADDRESS"),
    ("<paziente>\n  <nome>Giulia</nome>\n  <cognome>Rossetti</cognome>\n</paziente>", "Rossetti", "PERSON"),
    ('{"uid": 8839201, "real_name": "王晓琳", "wechat": "wxl_bj0315"}', "wxl_bj0315", "USERNAME"),
])
def test_more_identifiers_from_chats_forums_and_records(text, value, etype):
    assert (value, etype) in _found(text)


def test_a_mexican_colonia_is_no_colonel():
    assert "PERSON" not in _types("Calle Río Lerma 245, Col. Cuauhtémoc, C.P. 06500")
    assert ("Col. Mustard", "PERSON") in _found("Col. Mustard was in the library")


@pytest.mark.parametrize("text", [
    "- 4x M3x8 ISO 7380 (PN 100-0387)",  # a part number, not a Japanese postcode after a state code
    "=== Patient registration form (template v3.2) ===\nForm ID: FRM-PR-0032",
    "CREATE TABLE customer (\n  national_id   VARCHAR(32),\n  email: string\n)",
])
def test_colonias_part_numbers_form_ids_and_schemas_are_no_personal_data(text):
    assert not _types(text) - {"LOCATION", "DATE_TIME"}, _found(text)


def test_a_name_found_once_is_redacted_wherever_the_text_repeats_it(redactor):
    text = "On-call Olumide Adeyemi acknowledges\n02:31 Olumide escalates to the DBA team\nowner: Olumide"
    assert redactor.redact_texts([text])[0][0] == (
        "On-call [PERSON] acknowledges\n02:31 [PERSON] escalates to the DBA team\nowner: [PERSON]")
    # an everyday word at a sentence start is left alone, and lower-case prose is not a name
    assert redactor.redact_texts(["Grace Adebayo passed. The grace period ends."])[0][0] == (
        "[PERSON] passed. The grace period ends.")


def test_streets_named_after_people_and_mail_dates_are_no_persons(redactor):
    outs = [out for out, _ in redactor.redact_texts([
        "a savings account opened at the Allen Avenue branch.",
        "Date:   Thu Feb 1 17:42:03 2024 +0000",
        "Dear Ms Grace Court,"])]
    assert outs[0] == "a savings account opened at the Allen Avenue branch."
    assert "[PERSON]" not in outs[1]
    assert outs[2] == "Dear [PERSON],"  # a title makes "Court" a surname


@pytest.mark.parametrize("block, postcode", [
    ("Schwanthalerstraße 112, 3. OG\n80339 München\nReisepass-Nr.: folgt", "80339"),
    ("Oudegracht 233-bis\n3511 NK Utrecht\nIngangsdatum: 1 maart", "3511 NK"),
    ("17 bis rue des Tanneurs\nBât. B, Esc. 2\n69005 LYON\n\nMontant à payer", "69005"),
    ("Blk 512 Serangoon North Avenue 4\n#08-221\nSingapore 550512\nMobile: on file", "550512"),
    ("Flat 12, Block C-3, Janakpuri\nNew Delhi - 110058\nBill month: Aug", "110058"),
    ("2-8-11 Ebisu-Minami\nShibuya-ku, Tokyo 150-0022\nContact: on file", "150-0022"),
    ("Address in Japan:\n〒170-0013\nSunny Heights 502", "170-0013"),
    ("Rua do Sol, 12, casa 2\nBairro Boa Vista, Recife/PE\nCEP 50050-160", "50050-160"),
    ("No. 14, 2nd Cross\nMalleswaram\nBengaluru 560003\nPAN: on file", "560003"),
])
def test_the_postcode_on_a_postal_blocks_city_line(block, postcode):
    assert (postcode, "POSTCODE") in _found(block)


@pytest.mark.parametrize("text", ["Q3 plan\n2024 Budget\nThe plan holds", "Intro\nTotal 12345\n",
                                  "Version 2.0 released\nBuild 20240\n", "Q3 report\nTickets sold 48213\n"])
def test_a_number_line_that_is_no_postal_block(text):
    assert "POSTCODE" not in _types(text)


def test_a_role_greeted_is_no_person_though_it_is_also_a_surname(redactor):
    outs = [out for out, _ in redactor.redact_texts(["Admissions 2025\nDear Parent,\nWe are pleased to confirm",
                                                     "Dear Mr Parent,\nyour account is ready"])]
    assert outs == ["Admissions 2025\nDear Parent,\nWe are pleased to confirm", "Dear [PERSON],\nyour account is ready"]


def test_a_ner_person_with_a_foreign_function_word_inside_is_a_clause(redactor):
    out = redactor.redact_texts(["Der Zählerstand wird überprüft. Bis zur Klärung stunden wir den Betrag. "
                                 "Meet Maria dos Santos and Jean de la Fontaine."])[0][0]
    assert "Bis zur Klärung" in out and "Maria dos Santos" not in out and "Jean de la Fontaine" not in out


def test_a_spelled_name_survives_the_everyday_word_check(redactor):
    text = "CALLER: Hi, it's Gwendolyn Marsh, last name M A R S H.\nAGENT: Thank you."
    assert redactor.redact_texts([text])[0][0] == "CALLER: Hi, it's [PERSON], last name [PERSON].\nAGENT: Thank you."


def test_french_form_labels_and_table_headers_are_no_people(redactor):
    form = "Nom : Benali\nPrénom : Yasmine\nVille : Talence\nCode postal : 33400"
    assert redactor.redact_texts([form])[0][0] == (
        "Nom : [PERSON]\nPrénom : [PERSON]\nVille : [LOCATION]\nCode postal : [POSTCODE]")
    tsv = "Nom\tPrénom\tN° Sécurité sociale\tVille\nDubreuil\tAnaïs\t2 87 02 75 114 082 47\tParis"
    out = redactor.redact_texts([tsv])[0][0]
    assert out.split("\n")[0] == "Nom\tPrénom\tN° Sécurité sociale\tVille"
    assert "Dubreuil" not in out and "Anaïs" not in out and "114 082" not in out


@pytest.mark.parametrize("text, value, etype", [
    ('{"event":"login_failed","user":"lzawadzka","ip":"83.24.191.5"}', "lzawadzka", "USERNAME"),
    ("Withdrawal request from user cryptoKestrel_91 to a bitcoin address", "cryptoKestrel_91", "USERNAME"),
    ("requested by account trader_vk88 (Viktor Kowalczyk) from IP 91.1.1.1", "trader_vk88", "USERNAME"),
    ('Access log: 192.168.4.23 - admin_rkaur [12/Mar/2024:14:02:11] "POST /login"', "admin_rkaur", "USERNAME"),
    ("Admin login okettering / Thermo#Home77.", "okettering", "USERNAME"),
    ("Admin login okettering / Thermo#Home77.", "Thermo#Home77", "PASSWORD"),
    ("m.oyelaran changed password from Summer2023! to B3rl1n@Night on 2024-03-11", "Summer2023!", "PASSWORD"),
    ("m.oyelaran changed password from Summer2023! to B3rl1n@Night on 2024-03-11", "B3rl1n@Night", "PASSWORD"),
    ("paid with Visa 4532 7153 3790 4418, exp 11/26, CVV 382.", "11/26", "CREDIT_CARD"),
    ("collided with a vehicle registered ZX63 KLT owned by a neighbour", "ZX63 KLT", "VEHICLE_ID"),
    ("residential address 17 Nevsky Prospekt, Apt 58, St Petersburg 191186.",
     "17 Nevsky Prospekt, Apt 58, St Petersburg 191186", "STREET_ADDRESS"),
])
def test_logins_passwords_card_expiry_and_plates_in_more_shapes(text, value, etype):
    assert (value, etype) in _found(text)


@pytest.mark.parametrize("text", ['{"user": "hello"}', '{"user":"root"}', "login page / home", "login page / v2 docs",
                                  "Mozilla/5.0 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"])
def test_chat_users_system_accounts_links_and_user_agents_are_no_logins_or_ips(text):
    assert not _types(text) & {"USERNAME", "PASSWORD", "IP_ADDRESS"}


def test_an_ip_after_a_scheme_stays_and_a_protocol_version_is_no_password():
    assert ("10.12.0.8", "IP_ADDRESS") in _found("[ldap]\nserver = ldaps://10.12.0.8")
    assert not _types('10.0.0.5 - - [12/Mar/2024:09:14:22 +0000] "GET /api/login HTTP/1.1" 200') & {"PASSWORD"}


def test_shared_role_mailboxes_stay_unless_asked(redactor):
    from privtune.config import RedactConfig
    from privtune.data.redact import Redactor

    text = "From: Priya <priya.raghu84@gmail.com>\nTo: support@brightwaveisp.com, customer.service@shop.example"
    assert redactor.redact_texts([text])[0][0] == (
        "From: [PERSON] <[EMAIL_ADDRESS]>\nTo: support@brightwaveisp.com, customer.service@shop.example")
    strict = Redactor(RedactConfig(role_mailboxes=True)).redact_texts([text])[0][0]
    assert "support@" not in strict and "customer.service@" not in strict


def test_rooms_sites_and_firms_named_after_people_but_not_surnames_that_are_place_words(redactor):
    outs = [out for out, _ in redactor.redact_texts([
        "14 May 2024, Lovelace Room. Chidi Nwankwo will pick up the Hendricks Logistics account.",
        "John Hall called about the invoice."])]
    assert "Lovelace Room" in outs[0] and "Hendricks Logistics" in outs[0] and "Chidi" not in outs[0]
    assert outs[1] == "[PERSON] called about the invoice."


@pytest.mark.parametrize("text, value, etype", [
    ("Member ID: UHX 90441 2873-01\nClaim no.: 24D117300452", "UHX 90441 2873-01", "INSURANCE_ID"),
    ("user typed new password in chat: Spring2024!Kx – told her never to", "Spring2024!Kx", "PASSWORD"),
    ("next f/u 6/3 – agent kpatel2", "kpatel2", "USERNAME"),
])
def test_member_ids_secrets_in_chat_and_agent_handles(text, value, etype):
    assert (value, etype) in _found(text)


@pytest.mark.parametrize("text, value, etype", [
    ("Polizza attuale n.: RCA-4471029", "RCA-4471029", "INSURANCE_ID"),
    ("A minha apólice é AU-00781245.", "AU-00781245", "INSURANCE_ID"),
    ("Numer polisy: OC/2024/7718203", "OC/2024/7718203", "INSURANCE_ID"),
    ("Versicherungsschein-Nr.: HR-7730215-04", "HR-7730215-04", "INSURANCE_ID"),
    ("Oggetto: Bolletta errata – codice cliente 0098817263", "0098817263", "CUSTOMER_ID"),
    ("BSN 231478562, patiëntnummer 7004519.", "7004519", "MEDICAL_RECORD"),
    ("Nr ewidencyjny pracownika: MX-0382", "MX-0382", "EMPLOYEE_ID"),
    ("il Sig. Matteo Lo Presti, matricola n. 005718, in data", "005718", "EMPLOYEE_ID"),
    ("Mein Login ist tobi_kranich88.", "tobi_kranich88", "USERNAME"),
    ("Mon identifiant est mlgarnier_75.", "mlgarnier_75", "USERNAME"),
    ("Het oude wachtwoord was Eindhoven#4421, dat mag weg.", "Eindhoven#4421", "PASSWORD"),
    ("My SkyPoints number is SP-7719203.", "SP-7719203", "CUSTOMER_ID"),
    ("Dirección: Carrer de Provença 212, 08036 Barcelona", "Carrer de Provença 212, 08036 Barcelona", "STREET_ADDRESS"),
    ("geboren am 14.07.1991, wohnhaft Am Mühlgraben 3a, 04109 Leipzig.", "04109", "POSTCODE"),
    ("de woning aan de Keizersgracht 412-III, 1016 GC Amsterdam, met", "1016 GC", "POSTCODE"),
])
def test_identifiers_logins_and_addresses_named_in_european_languages(text, value, etype):
    assert (value, etype) in _found(text)


def test_agents_named_in_brackets_and_greeted_customers(redactor):
    outs = [out for out, _ in redactor.redact_texts([
        "Agent (Rohit): Welcome to the airline\nCustomer: hi\nAgent (Rohit): Sure.",
        "Konsultant (Paweł): Dzień dobry, w czym mogę pomóc?",
        "Caro Cliente,\nA Luso Energia informa che",
        "Cust provided SIN 527 184 634 for the credit check.",
        "Thanks for the help.\nMerci, Jean-Philippe"])]
    assert outs[0] == "Agent ([PERSON]): Welcome to the airline\nCustomer: hi\nAgent ([PERSON]): Sure."
    assert outs[1].startswith("Konsultant ([PERSON]):")
    assert outs[2].startswith("Caro Cliente,")
    assert outs[3].startswith("Cust provided")
    assert "Jean-Philippe" not in outs[4]


def test_a_lone_unknown_capitalised_word_in_german_or_spanish_prose_is_no_name(redactor):
    from privtune.data.redact import foreign_text

    de = ("Schadenmeldung Hausrat\nVersicherungsnehmerin: Friederike Anzengruber\nSchaden durch den geplatzten "
          "Schlauch der Waschmaschine. Rückruf bitte unter +49 761 2038554, ich bin ab 16 Uhr zu Hause.")
    out = redactor.redact_texts([de])[0][0]
    assert "Waschmaschine" in out and "Rückruf" in out and "Friederike Anzengruber" not in out
    assert foreign_text(de) and not foreign_text("Call Wanjiru tomorrow about the invoice, she is in Nairobi.")


@pytest.mark.parametrize("text, value, etype", [
    ("MITARBEITERIN: Unter welcher Nummer erreichen wir Sie?\nKUNDE: Null eins sieben eins, vier vier zwei, neun null.",
     "Null eins sieben eins, vier vier zwei, neun null", "PHONE_NUMBER"),
    ("CONSEILLER : Et un numéro où vous joindre ?\nCLIENTE : Zéro six, quarante-sept, douze, quatre-vingt-huit, trente "
     "et un.", "Zéro six, quarante-sept, douze, quatre-vingt-huit, trente et un", "PHONE_NUMBER"),
    ("CONSEILLER : Votre numéro de contrat ?\nCLIENTE : Oui, H R neuf deux trois un huit zéro cinq.",
     "H R neuf deux trois un huit zéro cinq", "ID_NUMBER"),
    ("AGENTE: ¿Me indica su DNI, por favor?\nCLIENTE: Cinco tres ocho uno dos siete cuatro cuatro, jota.",
     "Cinco tres ocho uno dos siete cuatro cuatro", "ID_NUMBER"),
    ("AGENT: And is the best email still gwen dot marsh seventy seven at gmail dot com?",
     "gwen dot marsh seventy seven at gmail dot com", "EMAIL_ADDRESS"),
    ("KUNDE: Nein, bitte an f Punkt brunnhuber at gmx Punkt de.", "f Punkt brunnhuber at gmx Punkt de", "EMAIL_ADDRESS"),
    ("CLIENTE : elodie point marchand tiret roux arobase orange point fr.",
     "elodie point marchand tiret roux arobase orange point fr", "EMAIL_ADDRESS"),
])
def test_numbers_and_addresses_spoken_in_other_languages(text, value, etype):
    assert (value, etype) in _found(text)


@pytest.mark.parametrize("text", ["What is the electric potential at the point charge, at the source?",
                                  "If at some point President Lincoln had said uno dos tres cuatro cinco",
                                  "Tre persone hanno detto uno due tre quattro cinque"])
def test_prose_with_at_point_and_counting_is_no_spoken_identifier(text):
    assert not _types(text) & {"EMAIL_ADDRESS", "PHONE_NUMBER", "ID_NUMBER"}


@pytest.mark.parametrize("text, value, etype", [
    ("transfer to Maybank (NUR SYAFIQAH BT RAZALI) lepas tu terus ghost", "NUR SYAFIQAH BT RAZALI", "PERSON"),
    ("the form was signed by Ahmad bin Ismail yesterday", "Ahmad bin Ismail", "PERSON"),
    ("mine shows wrong, roll no 21BCE1049, anyone else?", "21BCE1049", "ID_NUMBER"),
])
def test_patronymic_names_and_roll_numbers(text, value, etype):
    assert (value, etype) in _found(text)


def test_admission_and_roll_need_a_number_word():
    assert _found("Admission 2025 opens on Monday; roll 2024 call") == []
