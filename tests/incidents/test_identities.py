"""Domain tests for keeping identities out of the register (DESIGN §4)."""

import datetime as dt
import hashlib
import hmac
import re
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.nl import bsn

from service import clock
from service.incidents import identities
from service.incidents.identities import (
    KIND_ADDRESS,
    KIND_BIRTH_DATE,
    KIND_BSN,
    KIND_EMAIL,
    KIND_IBAN,
    KIND_PHONE,
    NoteRejected,
    check_note,
    derive_institution_key,
    fingerprint,
    fingerprint_phone,
    fingerprint_plate,
    is_citizen_service_number,
    normalise_phone,
    normalise_plate,
    pseudonymise_resident,
    screen_note,
)

TODAY = dt.date(2026, 11, 28)
ALL_KINDS = [KIND_BSN, KIND_PHONE, KIND_EMAIL, KIND_IBAN, KIND_ADDRESS, KIND_BIRTH_DATE]
MASTER_KEY = bytes(range(32))
SERVICE_KEY = b"service-wide fingerprint key, 32b"
INSTITUTION = uuid.UUID("0b6a1c5e-2f4d-4e8a-9c3b-7d1e5f2a6b90")
OTHER_INSTITUTION = uuid.UUID("5d0c1c2a-8f3e-4b7a-a1d2-3e4f5a6b7c8d")
HEX64 = re.compile(r"[0-9a-f]{64}")


def rfc5869_sha256(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256, no salt, 32 bytes, written out from RFC 5869 to check the library call independently."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


# --- citizen service numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("111222333", True),
        ("123456782", True),
        ("123.456.782", True),
        (" 123 456 782 ", True),
        ("1234.56.782", True),
        ("123456789", False),  # fails the 11-proof
        ("111222334", False),
        ("12", False),  # stdnum pads this to 000000012, which passes; a short client number is not a BSN
        ("12345678", False),
        ("1234567820", False),
        ("CL-0042", False),
        ("", False),
    ],
)
def test_is_citizen_service_number(value, expected):
    assert is_citizen_service_number(value) is expected


@pytest.mark.parametrize(
    "note", ["BSN 111222333", "bsn: 123456782.", "sofinummer 123.456.782", "nr 1234.56.782"]
)
def test_valid_bsn_in_a_note_is_found(note):
    assert screen_note(note, today=TODAY) == [KIND_BSN]


@pytest.mark.parametrize("note", ["nummer 123456789", "1234567820", "12345678"])
def test_numbers_that_are_not_a_bsn_pass(note):
    assert screen_note(note, today=TODAY) == []


def test_a_ten_digit_number_with_a_leading_zero_is_a_phone_number_not_a_bsn():
    # Written as a Dutch phone number is written (0 + nine digits), whether or not its range is issued.
    assert screen_note("0123456782 gebeld", today=TODAY) == [KIND_PHONE]
    assert screen_note("06 7731 9999 belde", today=TODAY) == [KIND_PHONE]


# --- note screening ----------------------------------------------------------------------------------------

HITS = [
    # (note, kind, the text that must not be echoed)
    ("Bewoner heeft BSN 123456782 genoemd", KIND_BSN, "123456782"),
    ("bezoeker belde met 06 12345678 naar de groep", KIND_PHONE, "06 12345678"),
    ("nummer +31 6 12345678 op briefje", KIND_PHONE, "+31 6 12345678"),
    ("Engels nummer +44 20 7946 0958 in haar telefoon", KIND_PHONE, "+44 20 7946 0958"),
    ("vast nummer 050-1234567", KIND_PHONE, "050-1234567"),
    ("contact via jan.devries@example.nl", KIND_EMAIL, "jan.devries@example.nl"),
    ("geld naar NL91 ABNA 0417 1643 00 overgemaakt", KIND_IBAN, "NL91 ABNA 0417 1643 00"),
    ("rekening nl91abna0417164300 van de oom", KIND_IBAN, "nl91abna0417164300"),
    ("Duitse rekening DE89 3704 0044 0532 0130 00", KIND_IBAN, "DE89 3704 0044 0532 0130 00"),
    ("opgehaald bij 9712 AB 12", KIND_ADDRESS, "9712 AB 12"),
    ("woont op Hoofdstraat 12, 9712AB Groningen", KIND_ADDRESS, "12, 9712AB"),
    ("adres 9712AB 12a", KIND_ADDRESS, "9712AB 12a"),
    ("geboren 12-03-2008", KIND_BIRTH_DATE, "12-03-2008"),
    ("geb. 1-3-2021, zusje", KIND_BIRTH_DATE, "1-3-2021"),
    ("geboortedatum: 2025-03-12", KIND_BIRTH_DATE, "2025-03-12"),
    ("DOB 12/03/1970", KIND_BIRTH_DATE, "12/03/1970"),
    ("date of birth 12 March 2024", KIND_BIRTH_DATE, "12 March 2024"),
    ("verjaardag 3 juni 2025", KIND_BIRTH_DATE, "3 juni 2025"),
    ("meisje van 12 maart 2010", KIND_BIRTH_DATE, "12 maart 2010"),  # no cue, 16 years back
    ("zegt dat hij op 15-06-2005 jarig is", KIND_BIRTH_DATE, "15-06-2005"),
    ("the boy, born May 1st, 2009", KIND_BIRTH_DATE, "May 1st, 2009"),
]


@pytest.mark.parametrize(("note", "kind", "offending"), HITS)
def test_each_kind_is_found_and_named(note, kind, offending):
    assert screen_note(note, today=TODAY) == [kind]


@pytest.mark.parametrize(("note", "kind", "offending"), HITS)
def test_rejection_names_the_kind_and_never_echoes_the_text(note, kind, offending, monkeypatch):
    monkeypatch.setattr(identities, "screen_note", lambda text: screen_note(text, today=TODAY))
    with pytest.raises(NoteRejected) as caught:
        identities.check_note(note)
    assert caught.value.kinds == [kind]
    assert str(caught.value) == f"note contains identifying data: {kind}"
    assert offending not in str(caught.value)
    assert offending not in repr(caught.value)


def test_unicode_look_alikes_of_month_names_do_not_break_screening():
    # Unicode case folding would match the long s to "s"; dates are read in ASCII only.
    assert screen_note("op 12 \u017fept 2010 gezien", today=TODAY) == []


def test_kinds_come_in_a_fixed_order_each_once():
    note = (
        "geboren 12-03-2008; mail jan@example.nl; Hoofdstraat 12, 9712 AB; IBAN NL91ABNA0417164300; "
        "bel 0612345678 of 0501234567; BSN 123456782 en 111222333"
    )
    assert screen_note(note, today=TODAY) == ALL_KINDS


def test_digits_inside_an_email_or_iban_are_not_also_a_phone_number_or_bsn():
    assert screen_note("mail naar jan0612345678@example.nl", today=TODAY) == [KIND_EMAIL]
    assert screen_note("bsn123456782@example.nl", today=TODAY) == [KIND_EMAIL]
    assert screen_note("NL91ABNA0417164300", today=TODAY) == [KIND_IBAN]


def test_check_note_is_quiet_for_a_clean_note():
    assert check_note("Bewoner kwam om 23:10 terug, 2 keer gebeld, kamer 12.") is None


def test_check_note_uses_todays_date_for_the_age_window():
    ten_years_ago = clock.today() - dt.timedelta(days=3653)
    with pytest.raises(NoteRejected) as caught:
        check_note(f"meisje van {ten_years_ago:%d-%m-%Y}")
    assert caught.value.kinds == [KIND_BIRTH_DATE]


@pytest.mark.parametrize(
    "note",
    [
        "Bewoner om 14:30 opgehaald door onbekende man in zwarte auto.",
        "Tussen 14.00 en 16.30 uur afwezig, 3 keer gebeld, niet opgenomen.",
        "Jongen (ca. 17) stond 2 keer bij de ingang van kamer 12.",
        "Locatie PC4 9712, bij het station.",
        "Om 14:30 9712 AB bij de ingang.",  # a time before a postcode is not a house number
        "Postcode 9712 AB, geen huisnummer bekend.",
        "Gezien bij 9712 SA 12",  # SA is never issued as postcode letters
        "Sinds 2019 in Groningen, in 2024 op 12 maart voor het eerst weggelopen.",
        "Afwezig sinds 12-03-2026, teruggekomen op 2026-11-20 om 22:15.",
        "Op 12-11-2026 om 22:15 teruggekomen, 3 jongens in een zwarte auto.",
        "Melding gedaan op 1 oktober 2026 bij Veilig Thuis.",
        "Gesprek op 27-11-1996?",  # just over 30 years back, no cue: not a resident's birth date
        "Datum 31-02-2008 klopt niet",  # not a calendar date
        "Kenteken 12-ABC-3, 2 inzittenden, ongeveer 1,5 uur gebleven.",
        "Heeft 250 euro gekregen en 3 telefoons, nummer onbekend.",
        "Schuld van 1.123.456.782 euro genoemd.",  # ten digits in thousands groups, not a BSN
        "Meldcode stap 3 gezet, zorgmelding 2026-0042 aangemaakt.",
        "Visitor said he was 19; left at 9:45pm.",
        "",
    ],
)
def test_clean_notes_have_no_false_positives(note):
    assert screen_note(note, today=TODAY) == []


@pytest.mark.parametrize(
    ("note", "today", "expected"),
    [
        ("28-11-2022", TODAY, [KIND_BIRTH_DATE]),  # exactly 4 years back
        ("29-11-2022", TODAY, []),
        ("28-11-1996", TODAY, [KIND_BIRTH_DATE]),  # exactly 30 years back
        ("27-11-1996", TODAY, []),
        ("28-02-1994", dt.date(2024, 2, 29), [KIND_BIRTH_DATE]),  # 30 years before a leap day
        ("27-02-1994", dt.date(2024, 2, 29), []),
        ("geboren 12-03-1950", TODAY, [KIND_BIRTH_DATE]),  # a cue makes any full date a birth date
        ("geboren op 20-11-2026", TODAY, [KIND_BIRTH_DATE]),
        ("20-11-2026 geboren", TODAY, [KIND_BIRTH_DATE]),
        ("geboren in 2008", TODAY, []),  # a year alone is not a full date
    ],
)
def test_birth_date_window_and_cues(note, today, expected):
    assert screen_note(note, today=today) == expected


def test_note_rejected_is_a_value_error_carrying_kinds():
    error = NoteRejected([KIND_BSN, KIND_PHONE])
    assert isinstance(error, ValueError)
    assert error.kinds == [KIND_BSN, KIND_PHONE]
    assert str(error) == "note contains identifying data: citizen service number (BSN), phone number"


BSN_LAYOUTS = [
    lambda n: n,
    lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}",
    lambda n: f"{n[:3]} {n[3:6]} {n[6:]}",
    lambda n: f"{n[:4]}.{n[4:6]}.{n[6:]}",
]
NO_DIGITS = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=60)


@given(
    eight=st.text("0123456789", min_size=8, max_size=8),
    layout=st.sampled_from(BSN_LAYOUTS),
    before=NO_DIGITS,
    after=NO_DIGITS,
    gap=st.sampled_from([" ", "\n", ": ", "(", ", "]),
)
def test_a_valid_bsn_anywhere_in_a_note_is_always_found(eight, layout, before, after, gap):
    checked = [eight + digit for digit in "0123456789" if bsn.is_valid(eight + digit)]
    assume(checked)  # one in eleven prefixes has no check digit
    note = before + gap + layout(checked[0]) + gap + after
    assert KIND_BSN in screen_note(note, today=TODAY)


@given(st.text(max_size=200))
def test_screening_any_text_returns_known_kinds_in_order(text):
    kinds = screen_note(text, today=TODAY)
    assert kinds == [kind for kind in ALL_KINDS if kind in kinds]


# --- resident pseudonyms -----------------------------------------------------------------------------------


def test_institution_key_is_rfc5869_hkdf_of_the_master_key():
    info = b"resident-pseudonym/v1/" + INSTITUTION.bytes
    assert derive_institution_key(MASTER_KEY, 1, INSTITUTION) == rfc5869_sha256(MASTER_KEY, info)


def test_institution_key_is_derived_once(monkeypatch):
    derivations = []
    real_hkdf = identities.HKDF

    def counting_hkdf(**kwargs):
        derivations.append(kwargs["info"])
        return real_hkdf(**kwargs)

    monkeypatch.setattr(identities, "HKDF", counting_hkdf)
    institution = uuid.uuid4()  # not yet in the cache
    first = derive_institution_key(MASTER_KEY, 7, institution)
    assert derive_institution_key(MASTER_KEY, 7, institution) == first
    assert derivations == [b"resident-pseudonym/v7/" + institution.bytes]


def test_pseudonym_is_a_pinned_hmac_of_the_reference():
    pseudonym = pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "CL-0042")
    key = rfc5869_sha256(MASTER_KEY, b"resident-pseudonym/v1/" + INSTITUTION.bytes)
    assert pseudonym == hmac.new(key, b"CL-0042", hashlib.sha256).hexdigest()
    # Pinned: a change here orphans every stored pseudonym.
    assert pseudonym == "0e7559ea2099e70c8c45e18245e1ed88a175ede51c6ec6a4e414f15985d21160"


def test_pseudonym_is_deterministic_and_separated():
    pseudonym = pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "CL-0042")
    assert pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "CL-0042") == pseudonym
    assert pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "  CL-0042\n") == pseudonym
    others = {
        pseudonymise_resident(MASTER_KEY, 1, OTHER_INSTITUTION, "CL-0042"),
        pseudonymise_resident(MASTER_KEY, 2, INSTITUTION, "CL-0042"),
        pseudonymise_resident(b"another master key", 1, INSTITUTION, "CL-0042"),
        pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "cl-0042"),  # case is kept
        pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, "CL-0043"),
    }
    assert len(others) == 5
    assert pseudonym not in others


@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_pseudonym_is_64_hex_and_does_not_contain_the_reference(resident_ref):
    pseudonym = pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, resident_ref)
    assert HEX64.fullmatch(pseudonym)
    assume(len(resident_ref.strip()) >= 4)  # two hex characters occur by chance
    assert resident_ref.strip() not in pseudonym


@pytest.mark.parametrize("resident_ref", ["", "   ", "\t\n"])
def test_empty_resident_reference_is_refused(resident_ref):
    with pytest.raises(ValueError, match=r"^resident reference is empty$"):
        pseudonymise_resident(MASTER_KEY, 1, INSTITUTION, resident_ref)


# --- visitor plates and phone numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12-abc-3", "12ABC3"),
        ("12-ABC-3", "12ABC3"),
        (" 12 abc 3 ", "12ABC3"),
        ("xx-99-yy", "XX99YY"),
        ("\uff11\uff12-\uff41\uff42\uff43-\uff13", "12ABC3"),  # full-width forms
        ("MÜ-AB 123", "MÜAB123"),  # German plate
        ("AB", "AB"),
        ("1234-5678-ABCD", "12345678ABCD"),  # 12 characters, the longest accepted
    ],
)
def test_normalise_plate(raw, expected):
    assert normalise_plate(raw) == expected


@pytest.mark.parametrize("raw", ["", "---", "A", " 7 ", "1234-5678-ABCDE", "!?"])
def test_not_a_plate_is_refused_without_echo(raw):
    with pytest.raises(ValueError) as caught:
        normalise_plate(raw)
    assert str(caught.value) == "not a vehicle plate"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12345678", "+31612345678"),
        ("+31 6 12345678", "+31612345678"),
        ("0031612345678", "+31612345678"),
        ("06-1234 5678", "+31612345678"),
        ("(050) 123 45 67", "+31501234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+31 6 91234567", "+31691234567"),  # possible, not in an issued range: still fingerprinted
    ],
)
def test_normalise_phone(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "geen nummer", "12", "06 1", "06 1234567890123", "+999 12345678"])
def test_not_a_phone_number_is_refused_without_echo(raw):
    with pytest.raises(ValueError) as caught:
        normalise_phone(raw)
    assert str(caught.value) == "not a phone number"
    assert caught.value.__cause__ is None
    # A parser error is not chained into logs; impossible numbers are refused after parsing, with no context.
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_fingerprint_is_a_pinned_hmac_under_the_derived_service_key():
    key = rfc5869_sha256(SERVICE_KEY, b"visitor-fingerprint/v1")
    expected = hmac.new(key, b"12ABC3", hashlib.sha256).hexdigest()
    assert fingerprint(SERVICE_KEY, "12ABC3") == expected
    assert fingerprint(SERVICE_KEY, "12ABC3") != hmac.new(SERVICE_KEY, b"12ABC3", hashlib.sha256).hexdigest()


def test_plate_fingerprint_is_equal_across_spellings_and_differs_across_plates():
    fingerprints = {fingerprint_plate(SERVICE_KEY, raw) for raw in ["12-ABC-3", "12abc3", " 12 abc 3 "]}
    assert fingerprints == {fingerprint(SERVICE_KEY, "12ABC3")}
    assert fingerprint_plate(SERVICE_KEY, "12-ABC-4") not in fingerprints
    assert fingerprint_plate(b"another service key", "12-ABC-3") not in fingerprints
    (only,) = fingerprints
    assert HEX64.fullmatch(only)
    assert "12ABC3" not in only.upper()


def test_phone_fingerprint_is_equal_across_spellings_and_differs_across_numbers():
    fingerprints = {
        fingerprint_phone(SERVICE_KEY, raw) for raw in ["06 12345678", "+31 6 12345678", "0031612345678"]
    }
    assert fingerprints == {fingerprint(SERVICE_KEY, "+31612345678")}
    assert fingerprint_phone(SERVICE_KEY, "06 12345679") not in fingerprints


def test_fingerprint_refuses_what_does_not_normalise():
    with pytest.raises(ValueError, match=r"^not a vehicle plate$"):
        fingerprint_plate(SERVICE_KEY, "-")
    with pytest.raises(ValueError, match=r"^not a phone number$"):
        fingerprint_phone(SERVICE_KEY, "12")
