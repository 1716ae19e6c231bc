"""Structured records: a field's name types its value (JSON, "Label: value" lines, CSV/TSV/Markdown tables), and
says where a NER "person" is a drug, a city or a hospital."""

from __future__ import annotations

from privtune.data import recognizers as R
from privtune.data.redact import resolve_spans


def _typed(text: str) -> dict[str, str]:
    spans = resolve_spans([s for s in R.rule_spans(text) if s.score >= 0.4 and s.entity_type not in (R.NO_PERSON, R.HEADER)], text)
    return {text[s.start:s.end]: s.entity_type for s in spans}


def test_json_fields_are_typed_by_their_keys_where_the_values_alone_say_nothing():
    text = ('{"patient_id": "pmc-6431471-1", "first_name": "Wei", "last_name": "Brown", "zip": "2127", '
            '"dob": "04/17/1960", "weight": "135", "last_visit": "10/03/2022"}')
    found = _typed(text)
    assert found["pmc-6431471-1"] == "MEDICAL_RECORD"
    assert found["Wei"] == "PERSON" and found["Brown"] == "PERSON"  # a surname that is also a colour
    assert found["2127"] == "POSTCODE" and found["04/17/1960"] == "DATE_OF_BIRTH"
    assert "135" not in found
    assert found["10/03/2022"] == "DATE_TIME"  # before: the "2022" of a date after "zip" became a POSTCODE


def test_key_spellings_are_one_key_and_nested_keys_count_by_their_ending():
    for key in ("last_name", "lastName", "LastName", "Last Name", "patient.last_name", "PATIENT_LAST_NAME"):
        assert R.field_type(key) == ("PERSON", False), key
    assert R.field_type("provider_name") == ("PERSON", True)  # a provider may be a hospital
    assert R.field_type("shipping_address")[0] == "STREET_ADDRESS"
    assert R.field_type("weight") == (None, False)
    assert R.field_type("prescription")[0] == R.NO_PERSON


def test_label_lines_and_inline_pairs_stop_each_value_at_the_next_key():
    found = _typed("First name: Noah\nLast name: Gray\nPhone: 617-248-4867\nAddress: 841 6th St, Boston\nZip: 2127\n")
    assert found == {"Noah": "PERSON", "Gray": "PERSON", "617-248-4867": "PHONE_NUMBER",
                     "841 6th St, Boston": "STREET_ADDRESS", "2127": "POSTCODE"}
    found = _typed("fname: Noah, lname: Gray, gender: male, postcode: 2127, age: 49")
    assert found == {"Noah": "PERSON", "Gray": "PERSON", "2127": "POSTCODE"}


def _fields(text: str) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.entity_type) for s in R.field_spans(text)]


def test_loose_keys_need_a_value_that_looks_like_a_person():
    assert _fields("Name: Premium plan") == []
    assert _fields("Name: Anna Kowalski") == [("Anna Kowalski", "PERSON")]
    assert _fields("Provider: City Spine Center") == []
    assert _fields("Provider: Dr. Rosa Fernandez") == [("Dr. Rosa Fernandez", "PERSON")]
    assert _fields("last_name: N/A, first_name: null") == []
    assert _fields("Phone: call me") == []  # a value of the wrong shape is not typed by its key
    assert _fields("Name: Anna Kowalski admitted today") == []  # prose after a label: the name cues and NER decide
    assert _fields("MRN: 00482913 admitted, Phone: 617-248-4867 (home)") == [
        ("00482913", "MEDICAL_RECORD"), ("00482913", R.NO_PERSON), ("617-248-4867", "PHONE_NUMBER"),
        ("617-248-4867", R.NO_PERSON)]


def test_csv_markdown_and_tsv_cells_are_typed_by_their_header():
    csv_text = ('patient_id,first_name,last_name,date_of_birth,provider_name\n'
                'pmc-1,Aisha,Liang,04/17/1960,"Dr. Jones, Virgen del Puerto Hospital"\n'
                'pmc-2,Harpreet,Chaudhry,03/10/1941,Oral Health Associates\n')
    found = _typed(csv_text)
    for name in ("Aisha", "Liang", "Harpreet", "Chaudhry"):
        assert found[name] == "PERSON"
    assert found["04/17/1960"] == "DATE_OF_BIRTH" and found["pmc-2"] == "MEDICAL_RECORD"
    assert "Oral Health Associates" not in found
    md = "| First Name | Surname | Zip |\n|---|---|---|\n| Akiko | Nakamura | 10001 |\n| Li | Xu | 94102 |\n"
    assert _typed(md) == {"Akiko": "PERSON", "Nakamura": "PERSON", "10001": "POSTCODE", "Li": "PERSON",
                          "Xu": "PERSON", "94102": "POSTCODE"}
    assert [f for f in _fields("name\tsurname\tcity\nAnna\tKowalski\tBoston\n") if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Anna", "PERSON"), ("Kowalski", "PERSON"), ("Boston", "LOCATION")]


def test_lines_that_only_look_like_tables_are_left_alone():
    # no header with a known key: prose with commas, and a header-less row
    assert _fields("Thanks, Liang, see you\nOk, Chaudhry, bye\n") == []
    assert _fields("pmc-1,Aisha,Liang\npmc-2,Harpreet,Chaudhry\n") == []
    # a row with another number of cells ends the table
    text = "first_name,last_name\nAnna,Kowalski\nthe meeting is at 5, then lunch, then home\n"
    assert _fields(text) == [("first_name,last_name", R.HEADER), ("Anna", "PERSON"), ("Kowalski", "PERSON")]


def test_a_field_that_names_a_drug_city_or_hospital_vetoes_a_ner_person(redactor):
    text = '{"prescription": "Zolpidem", "city": "San Antonio", "diagnosis": "Crohn\'s Disease"}'
    types = {text[s.start:s.end]: s.entity_type for s in redactor.spans([text])[0]}
    assert "Zolpidem" not in types
    assert types.get("San Antonio") == "LOCATION"
    # a name before an institution word is the institution's, unless the name is titled
    for text, gone in (("Seen at Saint Mary Hospital on arrival.", None), ("Referred to St. Mary Hospital.", None),
                       ("Referred to Dr. Chen's Clinic.", "Chen")):
        spans = redactor.spans([text])[0]
        persons = [text[s.start:s.end] for s in spans if s.entity_type == "PERSON"]
        assert (gone is None and not persons) or (gone is not None and any(gone in p for p in persons)), (text, persons)
    # ... and so is a name right after one: "Hospital Juan de Dios", "Universidade Federal do Espírito Santo"
    for text in ("Transferred to Hospital Juan de Dios.", "Studied at Universidade Federal do Espírito Santo."):
        assert not [s for s in redactor.spans([text])[0] if s.entity_type == "PERSON"], text
    text = "Seen at Hospital Geral by Dr. Ana Souza."
    assert [text[s.start:s.end] for s in redactor.spans([text])[0] if s.entity_type == "PERSON"] == ["Dr. Ana Souza"]
    # the same name in running text is still a person
    assert any(s.entity_type == "PERSON" for s in redactor.spans(["I met Mary Smith yesterday."])[0])


def test_xml_elements_query_strings_and_sql_inserts_are_typed_by_their_field_names():
    xml = "<patient><first_name>Aisha</first_name><lastName>Liang</lastName><dob>04/17/1960</dob><weight>135</weight></patient>"
    assert [f for f in _fields(xml) if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Aisha", "PERSON"), ("Liang", "PERSON"), ("04/17/1960", "DATE_OF_BIRTH")]
    query = "GET /api/users?first_name=Aisha&last_name=Liang&zip=10001&page=2"
    assert [f for f in _fields(query) if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Aisha", "PERSON"), ("Liang", "PERSON"), ("10001", "POSTCODE")]
    sql = ("INSERT INTO patients (id, first_name, last_name, phone) VALUES\n"
           "(1, 'Aisha', 'O''Brien', '617-248-4867'),\n(2, 'Harpreet', 'Chaudhry', NULL);")
    assert [f for f in _fields(sql) if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Aisha", "PERSON"), ("O''Brien", "PERSON"), ("617-248-4867", "PHONE_NUMBER"), ("Harpreet", "PERSON"),
        ("Chaudhry", "PERSON")]
    assert _fields("INSERT INTO t (first_name) VALUES (lower(x))") == []  # an expression is no name


def test_two_column_tables_of_field_names_and_values_are_read_row_by_row():
    md = ("| Field | Value |\n|---|---|\n| First name | Aisha |\n| Surname | Brown |\n| Zip | 10001 |\n| Weight | 135 |\n"
          "| Phone | 617-248-4867 |\n| Height | 61 |\n")
    assert [f for f in _fields(md) if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Aisha", "PERSON"), ("Brown", "PERSON"), ("10001", "POSTCODE"), ("617-248-4867", "PHONE_NUMBER")]
    assert [f for f in _fields("last_name,Liang\nphone,617-248-4867") if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("Liang", "PERSON"), ("617-248-4867", "PHONE_NUMBER")]
    # a two-column table with a header is still a table: "Anna" is typed by the "name" column, "5" by nothing
    assert _fields("name,score\nAnna,5\nBob,7\n") == [("name,score", R.HEADER), ("Anna", "PERSON")]


def test_bank_and_id_fields_take_their_whole_value_and_check_it():
    text = ('{"iban": "GB82 WEST 1234 5698 7654 32", "swift_bic_code": "DEUTDEFF500", "nhs_number": "943 476 5919", '
            '"vin": "1HGCM82633A004352", "account_pin": "4821"}')
    found = [f for f in _fields(text) if f[1] not in (R.NO_PERSON, R.HEADER)]
    assert found == [("GB82 WEST 1234 5698 7654 32", "IBAN_CODE"), ("DEUTDEFF500", "ROUTING_NUMBER"),
                     ("943 476 5919", "NATIONAL_ID"), ("1HGCM82633A004352", "VEHICLE_ID"), ("4821", "PASSWORD")]
    assert [f for f in _fields("Card number: 4111 1111 1111 1111 expires soon") if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("4111 1111 1111 1111", "CREDIT_CARD")]
    # a typo (mod-97 fails) in a field named IBAN is still someone's account; a value of another shape is not one
    assert [f for f in _fields("iban: GB82 WEST 1234 5698 7654 33") if f[1] not in (R.NO_PERSON, R.HEADER)] == [
        ("GB82 WEST 1234 5698 7654 33", "IBAN_CODE")]
    assert [f for f in _fields("iban: see attached form") if f[1] not in (R.NO_PERSON, R.HEADER)] == []
