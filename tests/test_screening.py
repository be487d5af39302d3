"""Domain tests for screening text for identifying data (DESIGN §4), the one definition every field uses.

The two tables are the honest record of what screening refuses and what it lets through: add a row to one of them
with every change to `service.screening`.
"""

import datetime as dt
import random
import unicodedata
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.nl import bsn

from service import clock, screening
from service.screening import (
    KIND_ADDRESS,
    KIND_BIRTH_DATE,
    KIND_BSN,
    KIND_EMAIL,
    KIND_IBAN,
    KIND_PHONE,
    KINDS,
    IdentifyingData,
    canonical,
    check_text,
    screen_text,
)

TODAY = dt.date(2026, 11, 28)
NBSP, NARROW_NBSP, ZERO_WIDTH, SOFT_HYPHEN = "\u00a0", "\u202f", "\u200b", "\u00ad"

REFUSED = [
    # (text, kinds): every row of the table, then the forms around them.
    # clientReference, residentRef, names, request ids and idempotency keys
    ("jan.devries@example.nl", [KIND_EMAIL]),
    ("06-12345678", [KIND_PHONE]),
    ("NL91ABNA0417164300", [KIND_IBAN]),
    ("Kerkstraat 12, 9711 AB", [KIND_ADDRESS]),
    ("12-03-2010", [KIND_BIRTH_DATE]),  # 16 years back, no cue needed
    ("2010-03-12", [KIND_BIRTH_DATE]),
    ("CL-20100312", [KIND_BIRTH_DATE]),  # written without separators, as client numbers sometimes are
    ("ref-12-03-2010", [KIND_BIRTH_DATE]),
    ("CL-2010-03-12", [KIND_BIRTH_DATE]),
    ("Jongere met BSN 111222333 opgehaald", [KIND_BSN]),
    ("111-222-333", [KIND_BSN]),
    ("111222333", [KIND_BSN]),
    ("CL-0042-111222333", [KIND_BSN]),
    ("Locatie Kerkstraat 12, 9711 AB", [KIND_ADDRESS]),
    ("Bel Jan: 06 1234 5678", [KIND_PHONE]),
    ("info@instelling.nl", [KIND_EMAIL]),
    # separators of every kind, and look-alike digits
    (f"111{NBSP}222{NBSP}333", [KIND_BSN]),
    (f"111{NARROW_NBSP}222{NARROW_NBSP}333", [KIND_BSN]),
    ("111\u3000222\u3000333", [KIND_BSN]),  # ideographic space
    ("111\u2013222\u2013333", [KIND_BSN]),  # en dash
    ("111\u2011222\u2011333", [KIND_BSN]),  # non-breaking hyphen
    ("111/222/333", [KIND_BSN]),
    ("111.222.333", [KIND_BSN]),
    ("1112.22.333", [KIND_BSN]),  # 4-2-3, as on identity documents
    (ZERO_WIDTH.join("111222333"), [KIND_BSN]),
    (SOFT_HYPHEN.join(["111", "222", "333"]), [KIND_BSN]),
    ("\uff11\uff11\uff11\uff12\uff12\uff12\uff13\uff13\uff13", [KIND_BSN]),  # full-width
    ("\u0661\u0661\u0661\u0662\u0662\u0662\u0663\u0663\u0663", [KIND_BSN]),  # Arabic-Indic digits
    ("06\u201112345678", [KIND_PHONE]),
    ("0\uff16 12345678", [KIND_PHONE]),
    ("jan\uff20example.nl", [KIND_EMAIL]),  # full-width @
    # notes: the standard forms, and the Dutch ways of writing them
    ("BSN 111-222-333", [KIND_BSN]),
    (f"BSN 111{NBSP}222{NBSP}333", [KIND_BSN]),
    ("Bewoner heeft BSN 123456782 genoemd", [KIND_BSN]),
    ("bsn: 123456782.", [KIND_BSN]),
    ("sofinummer 123.456.782", [KIND_BSN]),
    ("BSN: 12345678", [KIND_BSN]),  # named as a BSN: eight digits (an old one without its leading zero)
    ("bsn 123456789", [KIND_BSN]),  # named as a BSN: refused although a typo broke its 11-proof
    ("burgerservicenummer 1234 56 782", [KIND_BSN]),
    ("geb. 12-03-10", [KIND_BIRTH_DATE]),
    ("geboren op 1-3-10", [KIND_BIRTH_DATE]),
    ("geb 12/03/10, broertje", [KIND_BIRTH_DATE]),
    ("geb.datum 01.02.03", [KIND_BIRTH_DATE]),
    ("postcode 9711 AB huisnummer 12", [KIND_ADDRESS]),
    ("postcode 9711 ab, huisnummer 12", [KIND_ADDRESS]),  # lower case after the word "postcode"
    ("huisnummer 12, postcode 9711 AB", [KIND_ADDRESS]),
    ("woont op 9711AB nr. 12", [KIND_ADDRESS]),
    ("bezoeker belde met 06 12345678 naar de groep", [KIND_PHONE]),
    ("nummer +31 6 12345678 op briefje", [KIND_PHONE]),
    ("31612345678", [KIND_PHONE]),
    ("Engels nummer +44 20 7946 0958 in haar telefoon", [KIND_PHONE]),
    ("vast nummer 050-1234567", [KIND_PHONE]),
    ("0800-1234 gebeld", [KIND_PHONE]),  # a service number is a phone number too
    ("0123456782 gebeld", [KIND_PHONE]),  # written as a Dutch number is written, range issued or not
    ("06 7731 9999 belde", [KIND_PHONE]),
    ("contact via jan.devries@example.nl", [KIND_EMAIL]),
    ("mail jan(at)example(punt)nl", [KIND_EMAIL]),
    ("jan [at] example [dot] nl", [KIND_EMAIL]),
    ("geld naar NL91 ABNA 0417 1643 00 overgemaakt", [KIND_IBAN]),
    ("rekening nl91abna0417164300 van de oom", [KIND_IBAN]),
    ("Duitse rekening DE89 3704 0044 0532 0130 00", [KIND_IBAN]),
    ("opgehaald bij 9712 AB 12", [KIND_ADDRESS]),
    ("woont op Hoofdstraat 12, 9712AB Groningen", [KIND_ADDRESS]),
    ("adres 9712AB 12a", [KIND_ADDRESS]),
    ("geboren 12-03-2008", [KIND_BIRTH_DATE]),
    ("geb. 1-3-2021, zusje", [KIND_BIRTH_DATE]),
    ("geboortedatum: 2025-03-12", [KIND_BIRTH_DATE]),
    ("DOB 12/03/1970", [KIND_BIRTH_DATE]),
    ("date of birth 12 March 2024", [KIND_BIRTH_DATE]),
    ("verjaardag 3 juni 2025", [KIND_BIRTH_DATE]),
    ("meisje van 12 maart 2010", [KIND_BIRTH_DATE]),  # no cue, 16 years back
    ("zegt dat hij op 15-06-2005 jarig is", [KIND_BIRTH_DATE]),
    ("the boy, born May 1st, 2009", [KIND_BIRTH_DATE]),
    ("op 12 \u017fept 2010 gezien", [KIND_BIRTH_DATE]),  # the long s is an s: look-alikes are read as what they show
]

ALLOWED = [
    # The false positives screening avoids: dates of incidents, postcode areas alone, ordinary numbers.
    "SIG-2026-0001",
    "CL-0042",
    "2026-0042",
    "SIG-000001-90627d",  # a zero-padded serial is no phone number
    "Het Poortje",
    "Jeugdzorg Noord, locatie De Hoven 2",
    "Hoofdstraat 12",  # a street and number without a postcode point at no one
    "Locatie PC4 9712, bij het station.",
    "Tussen 9711 en 9712 gezien.",
    "Postcode 9712 AB, geen huisnummer bekend.",
    "Om 14:30 9712 AB bij de ingang.",  # a time before a postcode is not a house number
    "Gezien bij 9712 SA 12",  # SA is never issued as postcode letters
    "Bus stopte bij 9712AB12",  # postcode and number written together: too common in generated ids to refuse
    "REF-1234AB-5",  # or joined by dashes: as common in references (and UUIDs) as in addresses
    "Bewoner om 14:30 opgehaald door onbekende man in zwarte auto.",
    "Tussen 14.00 en 16.30 uur afwezig, 3 keer gebeld, niet opgenomen.",
    "Jongen (ca. 17) stond 2 keer bij de ingang van kamer 12.",
    "Sinds 2019 in Groningen, in 2024 op 12 maart voor het eerst weggelopen.",
    "Afwezig sinds 12-03-2026, teruggekomen op 2026-11-20 om 22:15.",
    "Op 12-11-2026 om 22:15 teruggekomen, 3 jongens in een zwarte auto.",
    "Melding gedaan op 1 oktober 2026 bij Veilig Thuis.",
    "Gesprek op 12-03-26.",  # a two-digit year without a birth cue is an incident date
    "Gesprek op 27-11-1996?",  # just over 30 years back, no cue: not a resident's birth date
    "Datum 31-02-2008 klopt niet",  # not a calendar date
    "geboren in 2008",  # a year alone is not a full date
    "Kenteken 12-ABC-3, 2 inzittenden, ongeveer 1,5 uur gebleven.",
    "Heeft 250 euro gekregen en 3 telefoons, nummer onbekend.",
    "Schuld van 1.123.456.782 euro genoemd.",  # ten digits in thousands groups, not a BSN
    "nummer 123456789",  # nine digits that fail the 11-proof, not named as a BSN
    "1234567820",
    "12345678",
    "Meldcode stap 3 gezet, zorgmelding 2026-0042 aangemaakt.",
    "Gemeente gebeld via 14 050.",  # a municipality's short number points at no one
    "Visitor said he was 19; left at 9:45pm.",
    "550e8400-e29b-41d4-a716-446655440000",  # UUIDs and hashes: generated, and their digits are no number
    "8cda80a34b454123917f6494e8c2d219",  # holds 454123917, which passes the 11-proof
    "B-1d07d20c-23b2-4ad1-98d6-83c054700723",
    "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    "",
]


@pytest.mark.parametrize(("text", "kinds"), REFUSED)
def test_what_is_refused(text: str, kinds: list[str]) -> None:
    assert screen_text(text, today=TODAY) == kinds


@pytest.mark.parametrize("text", ALLOWED)
def test_what_is_allowed(text: str) -> None:
    assert screen_text(text, today=TODAY) == []


def test_a_refusal_names_the_kinds_and_never_echoes_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "screen_text", lambda text: screen_text(text, today=TODAY))
    for text, kinds in REFUSED:
        with pytest.raises(IdentifyingData) as caught:
            screening.check_text(text)
        assert caught.value.kinds == kinds
        assert str(caught.value) == f"contains identifying data: {', '.join(kinds)}"
        assert text not in str(caught.value) + repr(caught.value)


def test_check_text_is_quiet_for_a_clean_text() -> None:
    assert check_text("Bewoner kwam om 23:10 terug, 2 keer gebeld, kamer 12.") is None


@pytest.mark.clock("2026-11-28")
def test_check_text_takes_the_age_window_from_the_service_clock() -> None:
    ten_years_ago = clock.today() - dt.timedelta(days=3653)
    with pytest.raises(IdentifyingData) as caught:
        check_text(f"meisje van {ten_years_ago:%d-%m-%Y}")
    assert caught.value.kinds == [KIND_BIRTH_DATE]


def test_kinds_come_in_a_fixed_order_each_once() -> None:
    text = ("geboren 12-03-2008; mail jan@example.nl; Hoofdstraat 12, 9712 AB; IBAN NL91ABNA0417164300; "
            "bel 0612345678 of 0501234567; BSN 123456782 en 111222333")
    assert screen_text(text, today=TODAY) == list(KINDS)


def test_digits_inside_an_email_or_iban_are_not_also_a_phone_number_or_bsn() -> None:
    assert screen_text("mail naar jan0612345678@example.nl", today=TODAY) == [KIND_EMAIL]
    assert screen_text("bsn123456782@example.nl", today=TODAY) == [KIND_EMAIL]
    assert screen_text("NL91ABNA0417164300", today=TODAY) == [KIND_IBAN]


def test_a_number_beside_a_generated_id_is_still_a_number() -> None:
    assert screen_text("8cda80a34b454123917f6494e8c2d219 0612345678", today=TODAY) == [KIND_PHONE]
    assert screen_text("deadbeefdeadbeef-111222333", today=TODAY) == [KIND_BSN]


@pytest.mark.parametrize(
    ("text", "today", "expected"),
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
        ("geb. 31-02-10", TODAY, []),  # not a calendar date in any century
    ],
)
def test_birth_date_window_and_cues(text: str, today: dt.date, expected: list[str]) -> None:
    assert screen_text(text, today=today) == expected


def test_random_uuids_are_never_refused() -> None:
    # Request ids and client references are often UUIDs; about 1 in 100 holds nine digits that pass the 11-proof.
    generator = random.Random(13)
    ids = [uuid.UUID(int=generator.getrandbits(128), version=4) for _ in range(3000)]
    assert [u for u in ids if screen_text(str(u), today=TODAY) or screen_text(u.hex, today=TODAY)] == []


def test_the_canonical_form_folds_look_alikes_and_drops_invisible_characters() -> None:
    assert canonical("\uff11\u0662\u00a0\u2013\u200bx") == "12 -x"
    assert canonical("Caf\u00e9 12") == "Caf\u00e9 12"  # letters keep their accents
    assert canonical("plain ascii 12") == "plain ascii 12"


def test_the_canonical_form_maps_every_dash_and_space_of_unicode() -> None:
    dashes = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Pd"]
    spaces = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"]
    assert {canonical(d) for d in dashes} <= {"-", "--", "- -"}  # NFKC spells a few (two-em dash) as two
    assert {canonical(s) for s in spaces} == {" "}


BSN_LAYOUTS = [
    lambda n: n,
    lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}",
    lambda n: f"{n[:3]} {n[3:6]} {n[6:]}",
    lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]}",
    lambda n: f"{n[:3]}{NBSP}{n[3:6]}{NBSP}{n[6:]}",
    lambda n: f"{n[:4]}.{n[4:6]}.{n[6:]}",
]
# Surrounding text without anything that reads as a digit (NFKC turns superscripts and circled numbers into digits).
NO_DIGITS = st.text(st.characters(blacklist_categories=("Nd", "No", "Nl", "Cs")), max_size=60).filter(
    lambda text: not any(char.isdigit() for char in canonical(text)))


@given(
    eight=st.text("0123456789", min_size=8, max_size=8),
    layout=st.sampled_from(BSN_LAYOUTS),
    before=NO_DIGITS,
    after=NO_DIGITS,
    gap=st.sampled_from([" ", "\n", ": ", "(", ", ", NBSP]),
)
def test_a_valid_bsn_anywhere_in_a_text_is_always_found(eight, layout, before, after, gap):  # type: ignore[no-untyped-def]
    checked = [eight + digit for digit in "0123456789" if bsn.is_valid(eight + digit)]
    assume(checked)  # one in eleven prefixes has no check digit
    text = before + gap + layout(checked[0]) + gap + after
    assert KIND_BSN in screen_text(text, today=TODAY)


@given(st.text(max_size=200))
def test_screening_any_text_returns_known_kinds_in_order(text: str) -> None:
    kinds = screen_text(text, today=TODAY)
    assert kinds == [kind for kind in KINDS if kind in kinds]
