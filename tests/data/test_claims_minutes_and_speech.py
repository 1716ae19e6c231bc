"""Gaps a seventh round of hand-written held-out sets showed (US claims and billing, dense multilingual snippets,
corporate mail threads and minutes, records from India, Latin America, Africa and South-East Asia, OCR'd forms and
speech-to-text), each written by someone who had not seen privtune's rules."""

from __future__ import annotations

import pytest

from privtune.config import RedactConfig
from privtune.data import recognizers as R
from privtune.data.redact import Redactor, resolve_spans


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.5
                           and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def _values(text: str) -> set[str]:
    return {v for v, _ in _found(text)}


# --- a firm's lines and shared mailboxes stay; a person's stay redacted -----------------------------------------

@pytest.mark.parametrize("text", [
    "Need help? Call the public helpline 1-800-555-0100 or write to us.",
    "Customer care: 1300 464 278.",
    "For queries call our trade desk on 0345 600 2210 (Mon–Fri).",
    "If not, call us immediately on +44 20 3946 1000.",
    "Dial-in: +44 20 3481 5237, conference ID 554 210.",
    "Per informazioni chiamare il numero verde 800 123 456.",
    "Service client : 09 69 39 75 75 (appel non surtaxé).",
    "Queries? Customer Services 0800 028 4411",
])
def test_a_firms_line_is_no_ones_phone(text):
    assert "PHONE_NUMBER" not in {t for _, t in _found(text)}, text


@pytest.mark.parametrize("text, phone", [
    ("You can reach me on 07700 900127 after six.", "07700 900127"),
    ("Corey Fenwick, adjuster, 800-555-0150 ext 4471", "800-555-0150 ext 4471"),  # a desk behind the free line
    ("Mobile: +91 98450 12345", "+91 98450 12345"),
])
def test_a_persons_phone_stays_a_phone(text, phone):
    assert (phone, "PHONE_NUMBER") in _found(text)


@pytest.mark.parametrize("address, shared", [
    ("finance-approvals@sorrelbank.com", True), ("all-staff-uk@pellmanhart.com", True),
    ("hr-records@brightwave.io", True), ("security-alerts@aurelisbank.com", True), ("members@shoprewards.ph", True),
    ("j.smith@corp.com", False), ("bkray@helixcrm.com", False), ("grace.lee@corp.com", False),
    ("rocket88@gmail.com", False), ("travel@gmail.com", False),  # anyone can hold a free-mail address
])
def test_shared_mailboxes_are_told_from_personal_ones(address, shared):
    assert R.role_mailbox(address) is shared


def test_a_firms_mailbox_stays_and_a_persons_is_redacted(redactor):
    out = redactor.redact_texts(["To: dispatch-team@ardenmills.co.uk\nCc: h.oyelaran@ardenmills.co.uk"])[0][0]
    assert out == "To: dispatch-team@ardenmills.co.uk\nCc: [EMAIL_ADDRESS]"
    strict = Redactor(RedactConfig(role_mailboxes=True)).redact_texts(["To: dispatch-team@ardenmills.co.uk"])[0][0]
    assert strict == "To: [EMAIL_ADDRESS]"


# --- claim forms, eligibility responses, X12 ---------------------------------------------------------------------

def test_a_claim_form_with_dot_leaders_and_capitals_names():
    text = ("1a. INSURED'S I.D. NUMBER ............ W4829173605\n"
            "2.  PATIENT'S NAME (Last, First, MI) .. OKAFOR, CHINEDU A\n"
            "26. PATIENT'S ACCOUNT NO. ............. PT-0048172\n"
            "MBI ................ 7KD2-XF4-TA91\n")
    found = _values(text)
    assert {"W4829173605", "OKAFOR, CHINEDU A", "PT-0048172", "7KD2-XF4-TA91"} <= found


@pytest.mark.parametrize("text, name", [
    ("Refill req - Rx# 6620418-07 - HOLLOWAY, DENISE (DOB 09/14/1957)", "HOLLOWAY, DENISE"),
    ("Beneficiary:  GUTIERREZ-PLAZA, ESTEBAN R\n", "GUTIERREZ-PLAZA, ESTEBAN R"),
    ("FL8  PATIENT NAME     b TRAN, MINH-ANH K\n", "TRAN, MINH-ANH K"),
    ("Dunmore, Franklin    UHC 981244710       8/9/1959", "Dunmore, Franklin"),
    ("| Lindgren, Per         | PsyD |", "Lindgren, Per"),
    ("Crew: EMT-P R. Castaneda / EMT-B L. Whitford", "R. Castaneda"),
])
def test_names_surname_first_and_initial_surname(text, name):
    assert (name, "PERSON") in _found(text)


@pytest.mark.parametrize("text", ["SHIP TO: LONDON, UK", "AUSTIN, TEXAS 78701", "sample for VZV, HSV, and CMV",
                                  "above 8°C. Roche cobas e 801 is unaffected"])
def test_places_acronyms_and_units_are_no_surname_first_names(text):
    assert "PERSON" not in {t for _, t in _found(text)}, text


@pytest.mark.parametrize("mbi", ["1EG4-TE5-MK73", "2HW9KT7EC44"])
def test_medicare_beneficiary_identifiers(mbi):
    assert (mbi, "INSURANCE_ID") in _found(f"MBI on file {mbi}, re-verified 7/8.")


def test_a_medicare_id_needs_its_letter_pattern():
    assert "INSURANCE_ID" not in {t for _, t in _found("Part 1SG4-TE5-MK73 shipped")}  # S is never used


def test_x12_claim_segments_are_read_element_by_element():
    text = ("ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*PAYERID77      *240712*1130*^*00501*000004471*0*P*:~\n"
            "GS*HC*SUBMITTER01*PAYERID77*20240712*1130*4471*X*005010X222A1~\n"
            "NM1*IL*1*BRANDVOLD*HENRIK****MI*LKS20488193~\n"
            "N3*6502 CEDAR FALLS RD~\n"
            "N4*CEDAR RAPIDS*IA*52402~\n"
            "DMG*D8*19630214*M~\n"
            "NM1*PR*2*LAKESIDE MUTUAL*****PI*77002~\n"
            "DTP*472*D8*20240709~\n")
    found = _found(text)
    for value, etype in [("BRANDVOLD", "PERSON"), ("HENRIK", "PERSON"), ("LKS20488193", "INSURANCE_ID"),
                         ("6502 CEDAR FALLS RD", "STREET_ADDRESS"), ("52402", "POSTCODE"),
                         ("19630214", "DATE_OF_BIRTH")]:
        assert (value, etype) in found
    values = {v for v, _ in found}
    assert not values & {"20240712", "20240709", "LAKESIDE MUTUAL", "77002"}  # dates, the payer and its id


@pytest.mark.parametrize("text", [
    "For HSA/FSA paperwork: group NPI 1992837465, tax ID 36-4419027.",
    "Group #: 5021",
    "25. FEDERAL TAX I.D. NUMBER ........... 31-1849260  [EIN]",
    "Coral Coast Pediatric Dentistry, TIN 59-3318420",
    "will be reviewed against policy RP-0441 v3.2.",
])
def test_an_organisations_numbers_are_not_a_persons(text):
    assert not {t for _, t in _found(text)} & {"TAX_ID", "MEDICAL_LICENSE", "INSURANCE_ID"}, text


# --- fields in many languages --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("Usuario: mgarcia_lopez / Contraseña: Sol&Playa_77", "mgarcia_lopez"),
    ("Inloggen met gebruiker ldegraaf_thuis en wachtwoord Tulp!2024vk.", "ldegraaf_thuis"),
    ("Usuário de rede: tnascimento\n", "tnascimento"),
    ("Checked by: rnguyen    2024-05-06 08:47:13 CST", "rnguyen"),
    ("Tech: smalloy    RPh: T. Ferreira-Quist", "smalloy"),
])
def test_logins_named_in_other_languages_and_by_who_keyed_a_record(text, value):
    assert (value, "USERNAME") in _found(text)


@pytest.mark.parametrize("text, secret", [
    ("A senha nova é Verao@2024! e mesmo assim dá erro.", "Verao@2024!"),
    ("la senha temporária é Tmp#58213x, troque no primeiro acesso", "Tmp#58213x"),
    ("utilisateur « s.moreau », mot de passe « Ete2024!Soleil ».", "Ete2024!Soleil"),
    ("Staging DB creds are user admin_rp / pass Hunter2!Staging, thanks", "Hunter2!Staging"),
    ("my email password again, I wrote it down as Bluebird1947! and the email is", "Bluebird1947!"),
])
def test_passwords_with_an_adjective_another_languages_is_or_guillemets(text, secret):
    assert (secret, "PASSWORD") in _found(text)


@pytest.mark.parametrize("text", ["Karte wurde nach dreimaliger falscher PIN-Eingabe gesperrt.",
                                  "redis_url: redis://<user>:<password>@localhost:6379",
                                  "your new password (optional)"])
def test_words_after_a_password_cue_are_not_always_a_password(text):
    assert "PASSWORD" not in {t for _, t in _found(text)}, text


@pytest.mark.parametrize("text, value", [
    ("Cuenta CLABE para depósitos: 012180004567891234.", "012180004567891234"),
    ("CVU: 0000003100047812936541", "0000003100047812936541"),
    ("tessera sanitaria n. 80380001204476519283.", "80380001204476519283"),
    ("permis de conduire n° 120775300211.", "120775300211"),
    ("Sa pièce d'identité : CNI n° 180275H01344.", "180275H01344"),
    ("cédula de ciudadanía No. 1.020.784.339 de Bogotá", "1.020.784.339"),
    ("SHA No.: CR4920187736-5", "CR4920187736-5"),
    ("Kennzeichen B-MK 4721, FIN WDB2110421A567890, Ausweis", "WDB2110421A567890"),
    ("Card on file: 4716 2290 5583 1047. New billing address", "4716 2290 5583 1047"),
])
def test_ids_named_by_their_cue_whatever_their_check_digits(text, value):
    assert value in _values(text)


def test_an_id_card_on_file_is_no_payment_card():
    assert ("310104198807152348", "NATIONAL_ID") in _found("ID card on file: 310104198807152348.")


# --- minutes name people by initials ------------------------------------------------------------------------------

def test_initials_of_a_name_found_in_the_text_are_that_person(redactor):
    text = ("Present: AB (Aditi Bhattacharya), JH (Jonah Hartley), Aisha Rahman-Jones\n"
            "- JH to swap with Sebastián.\n- AR-J – circulate draft budget.\n- IT to renew licences.")
    out = redactor.redact_texts([text])[0][0]
    assert "AB" not in out and "JH" not in out and "AR-J" not in out
    assert "IT to renew" in out  # initials that spell an office word stay


# --- other-language chat -------------------------------------------------------------------------------------------

def test_indonesian_address_terms_and_greetings_are_no_names(redactor):
    text = ("Penjual: Halo kak, pesanan sudah kami kemas ya.\nPembeli: Iya kak, kirim ke Dewi Lestari Putri\n"
            "Penjual: Siap kak Dewi, resi akan kami kirim besok.")
    out = redactor.redact_texts([text])[0][0]
    assert "Halo kak" in out and "Iya kak" in out and "Siap kak [PERSON]" in out
    assert "Dewi" not in out


# --- speech-to-text ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, etype", [
    ("agent and the first line of the address\ncaller flat two forty one canal street\n",
     "flat two forty one canal street", "STREET_ADDRESS"),
    ("agent and postcode\ncaller m one three h e\nagent thank you", "m one three h e", "POSTCODE"),
    ("the new address is flat b twenty seven ferndale road postcode is s e five nine e n and",
     "s e five nine e n", "POSTCODE"),
    ("agent and is the customer number still c c four four one nine zero seven\ncaller yes",
     "c c four four one nine zero seven", "ID_NUMBER"),
    ("your public ip is showing as eight one dot one four nine dot two two dot seven\n",
     "eight one dot one four nine dot two two dot seven", "IP_ADDRESS"),
    ("caller yeah its donovan pryce p r y c e\noperator and", "p r y c e", "PERSON"),
])
def test_what_speech_to_text_writes_for_addresses_codes_and_spelled_names(text, value, etype):
    start = text.index(value)
    assert any(found_type == etype and text.find(found) <= start and start + len(value) <= text.find(found) + len(found)
               for found, found_type in _found(text))  # the spelled name joins the name before it


@pytest.mark.parametrize("text, name", [
    ("tell sam and priya the party moved to mine", "priya"),
    ("message from imogen running ten minutes late", "imogen"),
    ("hey car call doctor okonkwo", "okonkwo"),
    ("so proud of u amaka, drinks on me saturday", "amaka"),
    ("three my names kasia thanks bye", "kasia"),
])
def test_lower_case_names_after_a_word_that_addresses_someone(text, name):
    assert (name, "PERSON") in _found(text)


@pytest.mark.parametrize("text", ["thanks, gona try that now", "tell them the party moved", "call tomorrow pls",
                                  "Message from Imogen: Running late"])  # cased text is the NER model's job
def test_lower_case_cues_before_words_that_are_no_names(text):
    assert "PERSON" not in {t for _, t in _found(text)}, text


# --- addresses in more countries' shapes -------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, etype", [
    ("Die Lieferung sollte an meine Adresse Am Kirchberg 3, 79112 Freiburg gehen.", "Am Kirchberg 3", "STREET_ADDRESS"),
    ("Straße: Am Sonnenhang 5\nPLZ/Ort: 79100 Freiburg", "Am Sonnenhang 5", "STREET_ADDRESS"),
    ('"line1":"Brīvības iela 145-12","city":"Rīga"', "Brīvības iela 145-12", "STREET_ADDRESS"),
    ("Meter serial E13UK04877 at 27 Heol y Nant, Caerphilly CF83 1QT", "27 Heol y Nant", "STREET_ADDRESS"),
    ("Delivery to C-204, Sai Residency, Sector 21, Kharghar 410210. My number", "C-204, Sai Residency, Sector 21",
     "STREET_ADDRESS"),
    ("Delivery to C-204, Sai Residency, Sector 21, Kharghar 410210. My number", "410210", "POSTCODE"),
    ("Calle Urdaneta 12, 3º izda., 20006 Donostia\nCorreo", "20006", "POSTCODE"),
    ("Wohnung Lindenstraße 47, 2. OG links, 10969 Berlin. Die", "10969", "POSTCODE"),
])
def test_addresses_in_more_countries_shapes(text, value, etype):
    assert (value, etype) in [(text[s.start:s.end], s.entity_type) for s in R.address_spans(text)]


def test_a_month_after_am_is_no_street():
    assert R.address_spans("Am Montag 3 Leute im Büro") == [] or not list(R.address_spans("Am Montag 3 Leute im Büro"))


# --- tables, exports and logs from IT, HR and finance --------------------------------------------------------------

def test_psql_output_and_recertification_tables_are_typed_by_their_header():
    psql = (" customer_id |       name        | account_no | billing_postcode\n"
            "-------------+-------------------+------------+------------------\n"
            " C-0098123   | Rashida Okafor    | 60412877   | M14 5TQ\n")
    assert {"C-0098123", "Rashida Okafor", "60412877", "M14 5TQ"} <= _values(psql)
    review = ("| User             | Login        | Role           | Keep?          |\n"
              "|------------------|--------------|----------------|----------------|\n"
              "| Chidi Eze        | ceze         | GL Approver    | Yes            |\n")
    assert ("ceze", "USERNAME") in _found(review) and "Chidi Eze" in _values(review)


def test_payroll_and_expense_exports_in_english_and_dutch():
    payroll = ("employee_id,full_name,ni_number,bank_iban,gross_pay\n"
               "E10233,Harriet Oyelaran,NH481726C,GB47BARC20457741829306,3412.50\n")
    assert {"Harriet Oyelaran", "NH481726C", "GB47BARC20457741829306"} <= _values(payroll)
    expenses = ("declaratienr;medewerker;personeelsnr;datum;bedrag\n"
                "DCL-3391;Joost Hendriks;NL-4471;12-02-2024;24,60\n")
    assert {"Joost Hendriks", "NL-4471"} <= _values(expenses)
    assert "DCL-3391" not in _values(expenses)  # the claim's own number


@pytest.mark.parametrize("text, value, etype", [
    ("Nov 21 16:04:10 bastion-02 sudo: dkaminski : TTY=pts/3 ; PWD=/home/dkaminski", "dkaminski", "USERNAME"),
    ("COMMAND=/usr/bin/mysql -u dkaminski -pR3port!ng_2024 -h db-fin-01", "R3port!ng_2024", "PASSWORD"),
    ("pam_unix(sudo:session): session opened for user root by dkaminski(uid=1043)", "dkaminski", "USERNAME"),
    ('"user":"CORP\\\\lvanderberg","host":"ws-114"', "lvanderberg", "USERNAME"),
    ("- AD: fbrouwer\n- GitHub: femkeb-dev\n", "femkeb-dev", "USERNAME"),
    ("thanks Marco! my IAM user is sanne.vandijk if that helps", "sanne.vandijk", "USERNAME"),
    ("Tax reference: see below. Nurse: Gráinne Duffy RGN (NMBI 118274)", "118274", "MEDICAL_LICENSE"),
])
def test_logins_and_registrations_in_logs_and_notes(text, value, etype):
    assert (value, etype) in _found(text)


@pytest.mark.parametrize("text", ["sudo: root : TTY=pts/0 ; COMMAND=/bin/ls", "C:\\Users\\Public\\Documents",
                                  "Order 4111 1111 1111 1112 was shipped.", "Approver: Fiona McAllister"])
def test_system_accounts_order_numbers_and_names_stay_what_they_are(text):
    types = {t for _, t in _found(text)}
    assert not types & {"USERNAME", "CREDIT_CARD"}, text


@pytest.mark.parametrize("text, value", [
    ("Tarjeta: 5412 7734 0918 2265 (Mastercard)", "5412 7734 0918 2265"),
    ("arrange repayment of deposit to PL27 1140 2004 0000 3102 7754 1190.", "PL27 1140 2004 0000 3102 7754 1190"),
    ("Der Zähler mit der Nummer 1ESY1160448822 wurde abgelesen", "1ESY1160448822"),
    ("Cliente: Rodrigo Amézquita | Póliza AUTO-MX-88213407 | RFC", "AUTO-MX-88213407"),
    ("appel de Mme Aubertin (client n° 0042 7781 93) : conteste", "0042 7781 93"),
    ("Halter: Maximilian Brandstätter, Führerschein-Nr. B072RRE2I55", "B072RRE2I55"),
    ("NIF: 48291736K   Nº historia clínica: HC-557103", "HC-557103"),
    ("your personal token is:\n  ksh_live_4fQ9zR2mT7vX1bN8pL6wY3cD\n", "ksh_live_4fQ9zR2mT7vX1bN8pL6wY3cD"),
    ("Temp password given over the phone: Winter!Lake82 - user must change it", "Winter!Lake82"),
    ("Online banking login 'twiecz79' accessed from abroad", "twiecz79"),
])
def test_ids_and_secrets_of_operations_notes(text, value):
    assert value in _values(text)
