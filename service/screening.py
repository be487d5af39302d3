"""Screening text for identifying data (DESIGN §4): one definition for every field the register stores or shows.

Notes and reasons, client and resident references, names of institutions, locations and clients, request ids: each
is screened here before it is kept. Pure functions, no Flask and no database, so every domain (and the tests)
shares one definition.

Text is screened in a canonical form, so that look-alikes and unusual separators hide nothing: NFKC (full-width
and other compatibility forms, no-break spaces), every decimal digit of any script as an ASCII digit, every space
as " ", every dash as "-", and invisible format characters (zero-width spaces, soft hyphens) removed. What is
stored is the text as it was sent; only the screening sees the canonical form.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import phonenumbers
from stdnum import iban
from stdnum.nl import bsn

from service import clock

KIND_BSN = "citizen service number (BSN)"
KIND_PHONE = "phone number"
KIND_EMAIL = "e-mail address"
KIND_IBAN = "IBAN"
KIND_ADDRESS = "postcode with house number"
KIND_BIRTH_DATE = "date of birth"
KINDS = (KIND_BSN, KIND_PHONE, KIND_EMAIL, KIND_IBAN, KIND_ADDRESS, KIND_BIRTH_DATE)


class IdentifyingData(ValueError):
    """Text holds identifying data; the message names only the kinds found, never the text."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = list(kinds)
        super().__init__("contains identifying data: " + ", ".join(self.kinds))


# --- the canonical form ------------------------------------------------------------------------------------


def _canonical_char(char: str) -> str | None:
    category = unicodedata.category(char)
    if category == "Nd":
        return str(unicodedata.digit(char))  # Arabic-Indic, Devanagari, mathematical digits: all are digits
    if category == "Zs":
        return " "
    if category == "Pd" or char == "\N{MINUS SIGN}":
        return "-"
    if category == "Cf":
        return None  # zero-width spaces and joiners, soft hyphens, direction marks: they only hide
    return char


class _CanonicalChars(dict[int, "str | int | None"]):
    """A str.translate table filled on first sight of each character; it stops growing at CAPACITY entries, so a
    hostile text of every code point costs time, not memory."""

    CAPACITY = 4096

    def __missing__(self, code: int) -> str | int | None:
        value = _canonical_char(chr(code))
        mapped: str | int | None = code if value == chr(code) else value
        if len(self) < self.CAPACITY:
            self[code] = mapped
        return mapped


_CANONICAL_CHARS = _CanonicalChars()


def canonical(text: str) -> str:
    """The form text is screened in: NFKC, ASCII digits, plain spaces and dashes, no invisible characters."""
    if text.isascii():
        return text  # NFKC leaves ASCII alone, and it has no other spaces, dashes or digits
    return unicodedata.normalize("NFKC", text).translate(_CANONICAL_CHARS)


# --- citizen service numbers -------------------------------------------------------------------------------

# Nine digits, bare or grouped 3-3-3 or 4-2-3 (as on Dutch ID documents) by one kind of separator, and not part of
# a longer number written with that separator (1.123.456.782 is an amount, not a BSN).
_BSN_GROUPINGS = [r"(?<!\d)(?<!\d\.)\d{9}(?!\d)(?!\.\d)"] + [
    rf"(?<!\d)(?<!\d{re.escape(sep)}){group}(?!\d)(?!{re.escape(sep)}\d)"
    for sep in " .-/"
    for group in (rf"\d{{3}}{re.escape(sep)}\d{{3}}{re.escape(sep)}\d{{3}}",
                  rf"\d{{4}}{re.escape(sep)}\d{{2}}{re.escape(sep)}\d{{3}}")
]
_BSN_CANDIDATE = re.compile(r"(?<!\d)(?=\d{3})(?:" + "|".join(_BSN_GROUPINGS) + ")")  # the lookahead: fast misses
# Eight or nine digits named as a BSN are one, whatever their separators and even when a typo breaks the 11-proof.
_NAMED_BSN = re.compile(
    r"\b (?:bsn|burgerservicenummer|burgerservicenr|sofinummer|sofi-?nr|sofi) \b [\s:.#=-]{0,4}"
    r" \d (?:[\s./-]?\d){7,8} (?!\d)",
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)


def _has_bsn(text: str) -> bool:
    if _NAMED_BSN.search(text):
        return True
    # stdnum pads short numbers with zeros; the candidates are always nine digits, so that cannot happen here.
    return any(bsn.is_valid(re.sub(r"\D", "", match.group())) for match in _BSN_CANDIDATE.finditer(text))


# --- e-mail addresses and IBANs ----------------------------------------------------------------------------

_AT = r"(?: @ | \s?[\[(]\s?at\s?[\])]\s? )"
_DOT = r"(?: \. | \s?[\[(]\s?(?:dot|punt)\s?[\])]\s? )"
# The usual local@domain.tld shape, and the (at)/[punt] spellings people use to dodge harvesters.
_EMAIL = re.compile(rf"[\w.%+-]+ {_AT} [\w-]+ (?:{_DOT}[\w-]+)* {_DOT}[a-z]{{2,}}", re.VERBOSE | re.IGNORECASE)
# Country code, check digits, then 11-30 letters/digits in any grouping; the checksum decides, not the regex.
_IBAN_CANDIDATE = re.compile(r"\b [a-z]{2} \d{2} (?:[\ -]?[a-z0-9]){11,30}", re.VERBOSE | re.IGNORECASE)


# Generated ids (UUIDs, hashes, random tokens: 16 or more hexadecimal characters, some of them letters) are not
# written by people; digits inside one are part of it, not a number (about 1 in 100 random UUIDs holds nine digits
# that pass the BSN 11-proof).
_HEX_TOKEN = re.compile(
    r"(?<![0-9a-z]) (?: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} | [0-9a-f]{16,} ) (?![0-9a-z])",
    re.VERBOSE | re.IGNORECASE,
)


def _hex_tokens_in(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _HEX_TOKEN.finditer(text)
            if not match.group().replace("-", "").isdigit()]  # sixteen digits are a number, not an id


def _ibans_in(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _IBAN_CANDIDATE.finditer(text):
        compact = match.group().replace(" ", "").replace("-", "").upper()
        # The candidate may run into the next word; every IBAN length is tried and the checksum picks one.
        if any(iban.is_valid(compact[:length]) for length in range(15, len(compact) + 1)):
            spans.append(match.span())
    return spans


# --- addresses ---------------------------------------------------------------------------------------------

# PC6: 4 digits not starting with 0, two letters but not SA/SD/SS (never issued); letters after a space must be
# capitals, so that "in 2024 op 12" is not an address, unless the word "postcode" says what follows.
_POSTCODE = r"""
    (?: (?i:postcode) \s*:?\s* [1-9]\d{3} \ ? (?![sS][aAdDsS])[a-zA-Z]{2}
      | [1-9]\d{3} (?: \ ?(?!S[ADS])[A-Z]{2} | (?!s[ads])[a-z]{2} ) ) (?![^\W\d_])
"""
_HOUSE_NUMBER = r"\d{1,5} (?:[-\ ]?[a-zA-Z](?![^\W\d_]))? (?:-\d{1,4})? (?!\d)"
_NUMBER_WORD = r"(?: (?i:huisnummer|huisnr|nummer|nr|no) \.? \s*:?\s* )"
# A postcode and a house number next to each other, in either order, apart (a space, a comma, "huisnummer",
# "postcode"): "9712AB12" written together is rare in addresses and common in hexadecimal ids. The number-first
# form needs a word in front of it so that a time or a count before a postcode ("om 14:30 9712 AB") stays clean.
_APART = r"(?: \s*,\s* | \s+ )"
_ADDRESS = re.compile(
    rf"""
      {_POSTCODE} {_APART} {_NUMBER_WORD}? {_HOUSE_NUMBER}
    | (?<=[^\W\d_]\s) {_HOUSE_NUMBER} {_APART} {_POSTCODE}
    """,
    re.VERBOSE,
)

# --- dates of birth ----------------------------------------------------------------------------------------

# Dutch, English and abbreviated month names, in calendar order.
_MONTH_NAMES = (
    "januari january jan | februari february feb | maart march mrt mar | april apr | mei may | juni june jun"
    " | juli july jul | augustus august aug | september sept sep | oktober october okt oct | november nov"
    " | december dec"
)
_MONTHS = {name: n for n, names in enumerate(_MONTH_NAMES.split("|"), 1) for name in names.split()}
_MONTH = "(?P<month_name>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year> (?:19|20)\d{2}) (?!\d)"
_DAY_2, _MONTH_2 = r"(?P<day>0[1-9]|[12]\d|3[01])", r"(?P<month>0[1-9]|1[0-2])"
# Full calendar dates only: a year alone, a month and year, or a time of day can never match. ASCII, because
# Unicode case folding lets the long s (U+017F) match "s", and the month lookup would then miss.
_FLAGS = re.VERBOSE | re.IGNORECASE | re.ASCII
# Not the tail of a longer run of numbers (1.12.03.2008); after a word and a dash it is ("CL-12-03-2008").
_NOT_AFTER_A_NUMBER = r"(?<![\d/.]) (?<!\d-)"
_DATES = [
    re.compile(pattern, _FLAGS)
    for pattern in (
        # 12-03-2008, 12/03/2008, 2.3.2008: the same separator twice, day first as in the Netherlands.
        rf"{_NOT_AFTER_A_NUMBER} (?P<day>\d{{1,2}}) (?P<sep>[-/.]) (?P<month>\d{{1,2}}) (?P=sep) {_YEAR}",
        # 2008-03-12: ISO 8601, what forms and exports produce.
        rf"{_NOT_AFTER_A_NUMBER} (?P<year>(?:19|20)\d{{2}}) - (?P<month>\d{{2}}) - (?P<day>\d{{2}}) (?!\d) (?!-\d)",
        # 20080312 and 12032008: written without separators, as in file names and client numbers.
        rf"(?<!\d) (?P<year>(?:19|20)\d{{2}}) {_MONTH_2} {_DAY_2} (?!\d)",
        rf"(?<!\d) {_DAY_2} {_MONTH_2} (?P<year>(?:19|20)\d{{2}}) (?!\d)",
        # 12 maart 2008, 12 March 2008, 1st of May 2008: the way people write a date in a sentence.
        rf"\b (?P<day>\d{{1,2}}) (?:st|nd|rd|th|e|ste|de)? (?:\s+of)? \s+ {_MONTH} \s+ {_YEAR}",
        # March 12, 2008: the American order.
        rf"\b {_MONTH} \s+ (?P<day>\d{{1,2}}) (?:st|nd|rd|th)? ,? \s+ {_YEAR}",
    )
]
# 12-03-10: a two-digit year is any date at all, so it counts only next to a birth cue ("geb. 12-03-10").
_SHORT_DATE = re.compile(
    rf"{_NOT_AFTER_A_NUMBER} (?P<day>\d{{1,2}}) (?P<sep>[-/.]) (?P<month>\d{{1,2}}) (?P=sep) (?P<year>\d{{2}})"
    r" (?![\d/.-]?\d)", _FLAGS)
# Words that turn any full date near them into a birth date.
_BIRTH_CUE = re.compile(
    r"""
    \b (?: geboren | geb \b \.? | geb\.?datum | geboorte\w* | born | birth\ ?date | birthday | date\ of\ birth
         | d\.?o\.?b\b | verjaardag | jarig )
    """,
    _FLAGS,
)
_CUE_BEFORE, _CUE_AFTER = 40, 25  # characters: "geboren op 12-03-2008", "12-03-2008 (geboortedatum)"
# A full date 4 to 30 years back in a note about a young person in care is almost always a birth date.
_MIN_AGE_YEARS, _MAX_AGE_YEARS = 4, 30


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _dates_in(text: str, patterns: list[re.Pattern[str]], century: int = 0) -> list[tuple[dt.date, int, int]]:
    found = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            parts = match.groupdict()
            month = int(parts["month"]) if parts.get("month") else _MONTHS[parts["month_name"].lower()]
            try:
                day = dt.date(century + int(parts["year"]), month, int(parts["day"]))
            except ValueError:  # 31-02-2008 is not a date, so it cannot be a birth date
                continue
            found.append((day, match.start(), match.end()))
    return found


def _near_a_cue(text: str, start: int, end: int) -> bool:
    return _BIRTH_CUE.search(text, max(0, start - _CUE_BEFORE), end + _CUE_AFTER) is not None


# No BSN, phone number (+683 4002 is one of the shortest) or IBAN has fewer than seven digits between letters;
# without such a run their patterns, and the phone number matcher, the slowest part of screening, are not needed.
_SEVEN_DIGITS = re.compile(r"\d(?:\W*\d){6}")
_ANY_YEAR = re.compile(r"(?:19|20)\d\d")
_ANY_SHORT_DATE = re.compile(r"\d[-/.]\d")


def _has_birth_date(text: str, today: dt.date) -> bool:
    oldest, youngest = _years_before(today, _MAX_AGE_YEARS), _years_before(today, _MIN_AGE_YEARS)
    if _ANY_YEAR.search(text):  # every full date has a four-digit year
        for day, start, end in _dates_in(text, _DATES):
            if oldest <= day <= youngest or _near_a_cue(text, start, end):
                return True
    # Any century will do for the calendar check: a cue makes every date a birth date.
    return _ANY_SHORT_DATE.search(text) is not None and any(
        _near_a_cue(text, start, end) for _day, start, end in _dates_in(text, [_SHORT_DATE], 2000))


# --- phone numbers -----------------------------------------------------------------------------------------



# Read with NL as the default region, a valid number is written with its national prefix 0, an international
# prefix (+, 00), or the country code 31; a number that starts otherwise ("2026-0001") need not be parsed.
_PHONE_START = re.compile(r"(?: \+ | (?<!\d)0 | (?<!\d)31 ) (?:\W*\d){5}", re.VERBOSE)


def _has_phone(text: str) -> bool:
    """A number in an issued range (valid), or one written as a phone number is written here: a leading 0 or +
    and a full-length national number. The second catches what normalise_phone would accept as a visitor's
    number although its range is not issued yet (06-7...), without taking dates, counts or PC4s for numbers."""
    if not _PHONE_START.search(text):
        return False
    if phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.VALID).has_next():
        return True
    for match in phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.POSSIBLE):
        written = match.raw_string.lstrip("( ")
        national = phonenumbers.national_significant_number(match.number)
        # A zero-padded serial ("000001-90627") parses with leading zeros; no national number starts with one.
        if written[:1] in ("0", "+") and len(national) >= 9 and not national.startswith("0"):
            return True
    return False


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


# --- screening ---------------------------------------------------------------------------------------------

_AT_SIGN = re.compile(_AT, re.VERBOSE | re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")
_ANY_POSTCODE = re.compile(r"[1-9]\d{3}")


def screen_text(text: str, *, today: dt.date | None = None) -> list[str]:
    """Return the kinds of identifying data in a text, each once, in the order of KINDS; [] means clean.

    `today` anchors the birth-date age window (default: the service's clock).
    """
    text = canonical(text)
    # Cheap tests first: most texts are names and sentences without long numbers, and the full patterns (the
    # phone number matcher above all) are what makes screening slow.
    maybe_email = ("@" in text or "(" in text or "[" in text) and _AT_SIGN.search(text) is not None
    if not maybe_email and not _DIGIT.search(text):
        return []  # every kind but an e-mail address needs a digit
    emails = [match.span() for match in _EMAIL.finditer(text)] if maybe_email else []
    long_numbers = _SEVEN_DIGITS.search(text) is not None  # every BSN, phone number and IBAN has a run of seven
    ibans = _ibans_in(text) if long_numbers else []
    # Digits inside an e-mail address or an IBAN are that kind, not also a phone number or BSN; inside a
    # generated id they are nothing.
    rest = _blank(text, emails + ibans)
    if long_numbers:
        rest = _blank(rest, _hex_tokens_in(rest))
        long_numbers = _SEVEN_DIGITS.search(rest) is not None
    found = {
        KIND_BSN: long_numbers and _has_bsn(rest),
        KIND_PHONE: long_numbers and _has_phone(rest),
        KIND_EMAIL: bool(emails),
        KIND_IBAN: bool(ibans),
        KIND_ADDRESS: _ANY_POSTCODE.search(rest) is not None and _ADDRESS.search(rest) is not None,
        KIND_BIRTH_DATE: _has_birth_date(rest, today or clock.today()),
    }
    return [kind for kind, hit in found.items() if hit]


def check_text(text: str) -> None:
    """Raise IdentifyingData naming the kinds of identifying data found; return quietly for a clean text."""
    kinds = screen_text(text)
    if kinds:
        raise IdentifyingData(kinds)
