"""Keeping identities out of the register (DESIGN §4): note screening, pseudonyms and visitor fingerprints.

Pure functions, no Flask and no database, so ingest, corrections and tests share one definition.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import unicodedata
import uuid

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum import iban
from stdnum.nl import bsn

from service import clock

KIND_BSN = "citizen service number (BSN)"
KIND_PHONE = "phone number"
KIND_EMAIL = "e-mail address"
KIND_IBAN = "IBAN"
KIND_ADDRESS = "postcode with house number"
KIND_BIRTH_DATE = "date of birth"


class NoteRejected(ValueError):
    """A note holds identifying data; the message names only the kinds found, never the text."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = list(kinds)
        super().__init__("note contains identifying data: " + ", ".join(self.kinds))


# Nine digits, bare or grouped 3-3-3 or 4-2-3 (as on Dutch ID documents), not part of a longer number.
_BSN_CANDIDATE = re.compile(
    r"(?<!\d) (?<!\d\.) (?: \d{9} | \d{3}([ .])\d{3}\1\d{3} | \d{4}([ .])\d{2}\2\d{3} ) (?!\d) (?!\.\d)",
    re.VERBOSE,
)
# The usual local@domain.tld shape; obfuscations like "jan at gmail dot com" are out of reach of any regex.
_EMAIL = re.compile(r"[\w.%+-]+ @ [\w-]+ (?:\.[\w-]+)* \.[a-z]{2,}", re.VERBOSE | re.IGNORECASE)
# Country code, check digits, then 11-30 letters/digits in any grouping; the checksum decides, not the regex.
_IBAN_CANDIDATE = re.compile(r"\b [a-z]{2} \d{2} (?:\ ?[a-z0-9]){11,30}", re.VERBOSE | re.IGNORECASE)
# PC6: 4 digits not starting with 0, two letters but not SA/SD/SS (never issued); letters after a space
# must be capitals, so that "in 2024 op 12" is not an address.
_POSTCODE = r"""
    (?<!\d) [1-9]\d{3} (?: \ ?(?!S[ADS])[A-Z]{2} | (?!s[ads])[a-z]{2} ) (?![^\W\d_])
"""
_HOUSE_NUMBER = r"\d{1,5} (?:[-\ ]?[a-zA-Z](?![^\W\d_]))? (?:-\d{1,4})? (?!\d)"
# A postcode and a house number next to each other, in either order; the number-first form needs a street name
# in front of it so that a time or a count before a postcode ("om 14:30 9712 AB") stays clean.
_ADDRESS = re.compile(
    rf"""
      {_POSTCODE} \s*,?\s* {_HOUSE_NUMBER}
    | (?<=[^\W\d_]\s) {_HOUSE_NUMBER} \s*,?\s* {_POSTCODE}
    """,
    re.VERBOSE,
)

# Dutch, English and abbreviated month names, in calendar order.
_MONTH_NAMES = (
    "januari january jan | februari february feb | maart march mrt mar | april apr | mei may | juni june jun"
    " | juli july jul | augustus august aug | september sept sep | oktober october okt oct | november nov"
    " | december dec"
)
_MONTHS = {name: n for n, names in enumerate(_MONTH_NAMES.split("|"), 1) for name in names.split()}
_MONTH = "(?P<month_name>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year> (?:19|20)\d{2}) (?!\d)"
# Full calendar dates only: a year alone, a month and year, or a time of day can never match. ASCII, because
# Unicode case folding lets the long s (U+017F) match "s", and the month lookup would then miss.
_DATES = [
    re.compile(pattern, re.VERBOSE | re.IGNORECASE | re.ASCII)
    for pattern in (
        # 12-03-2008, 12/03/2008, 2.3.2008: the same separator twice, day first as in the Netherlands.
        rf"(?<![\d/.-]) (?P<day>\d{{1,2}}) (?P<sep>[-/.]) (?P<month>\d{{1,2}}) (?P=sep) {_YEAR}",
        # 2008-03-12: ISO 8601, what forms and exports produce.
        r"(?<![\d/.-]) (?P<year>(?:19|20)\d{2}) - (?P<month>\d{2}) - (?P<day>\d{2}) (?![\d-])",
        # 12 maart 2008, 12 March 2008, 1st of May 2008: the way people write a date in a sentence.
        rf"\b (?P<day>\d{{1,2}}) (?:st|nd|rd|th|e|ste|de)? (?:\s+of)? \s+ {_MONTH} \s+ {_YEAR}",
        # March 12, 2008: the American order.
        rf"\b {_MONTH} \s+ (?P<day>\d{{1,2}}) (?:st|nd|rd|th)? ,? \s+ {_YEAR}",
    )
]
# Words that turn any full date near them into a birth date.
_BIRTH_CUE = re.compile(
    r"""
    \b (?: geboren | geb\. | geboorte\w* | born | birth\ ?date | birthday | date\ of\ birth | d\.?o\.?b\b
         | verjaardag | jarig )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_CUE_BEFORE, _CUE_AFTER = 40, 25  # characters: "geboren op 12-03-2008", "12-03-2008 (geboortedatum)"
# A full date 4 to 30 years back in a note about a young person in care is almost always a birth date.
_MIN_AGE_YEARS, _MAX_AGE_YEARS = 4, 30


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _dates_in(text: str) -> list[tuple[dt.date, int, int]]:
    found = []
    for pattern in _DATES:
        for match in pattern.finditer(text):
            parts = match.groupdict()
            month = int(parts["month"]) if parts.get("month") else _MONTHS[parts["month_name"].lower()]
            try:
                day = dt.date(int(parts["year"]), month, int(parts["day"]))
            except ValueError:  # 31-02-2008 is not a date, so it cannot be a birth date
                continue
            found.append((day, match.start(), match.end()))
    return found


def _has_birth_date(text: str, today: dt.date) -> bool:
    oldest, youngest = _years_before(today, _MAX_AGE_YEARS), _years_before(today, _MIN_AGE_YEARS)
    for day, start, end in _dates_in(text):
        if oldest <= day <= youngest:
            return True
        if _BIRTH_CUE.search(text, max(0, start - _CUE_BEFORE), end + _CUE_AFTER):
            return True
    return False


def _ibans_in(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _IBAN_CANDIDATE.finditer(text):
        compact = match.group().replace(" ", "").upper()
        # The candidate may run into the next word; every IBAN length is tried and the checksum picks one.
        if any(iban.is_valid(compact[:length]) for length in range(15, len(compact) + 1)):
            spans.append(match.span())
    return spans


def _has_phone(text: str) -> bool:
    """A number in an issued range (VALID), or one written as a phone number is written here: a leading 0 or +
    and a full-length national number. The second catches what normalise_phone would accept as a visitor's
    number although its range is not issued yet (06-7...), without taking dates, counts or PC4s for numbers."""
    if phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.VALID).has_next():
        return True
    for match in phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.POSSIBLE):
        written = match.raw_string.lstrip("( ")
        national = phonenumbers.national_significant_number(match.number)
        if written[:1] in ("0", "+") and len(national) >= 9:
            return True
    return False


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def screen_note(text: str, *, today: dt.date | None = None) -> list[str]:
    """Return the kinds of identifying data in a free-text note, each once, in a fixed order; [] means clean.

    `today` anchors the birth-date age window (default: the current date).
    """
    today = today or clock.today()
    emails = [m.span() for m in _EMAIL.finditer(text)]
    ibans = _ibans_in(text)
    # Digits inside an e-mail address or an IBAN are that kind, not also a phone number or BSN.
    rest = _blank(text, emails + ibans)
    found = {
        KIND_BSN: any(bsn.is_valid(m.group()) for m in _BSN_CANDIDATE.finditer(rest)),
        KIND_PHONE: _has_phone(rest),
        KIND_EMAIL: bool(emails),
        KIND_IBAN: bool(ibans),
        KIND_ADDRESS: _ADDRESS.search(rest) is not None,
        KIND_BIRTH_DATE: _has_birth_date(rest, today),
    }
    return [kind for kind, hit in found.items() if hit]


def check_note(text: str) -> None:
    """Raise NoteRejected naming the kinds of identifying data found; return quietly for a clean note."""
    kinds = screen_note(text)
    if kinds:
        raise NoteRejected(kinds)


def is_citizen_service_number(value: str) -> bool:
    """True when the value, spaces and dots removed, is nine digits passing the BSN 11-proof."""
    digits = value.replace(" ", "").replace(".", "")
    # stdnum pads short numbers with zeros, which would refuse one in eleven short client numbers.
    return len(digits) == 9 and bsn.is_valid(digits)


@functools.lru_cache(maxsize=1024)
def _institution_key(master_key: bytes, key_version: int, institution_id: uuid.UUID) -> bytes:
    info = b"resident-pseudonym/v%d/" % key_version + institution_id.bytes
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def derive_institution_key(master_key: bytes, key_version: int, institution_id: uuid.UUID) -> bytes:
    """Return the 32-byte HKDF-SHA256 key of one institution under one version of the master key."""
    # Cached: every ingested incident needs it, and HKDF is pure, so a cached key is always the right key.
    return _institution_key(master_key, key_version, institution_id)


def pseudonymise_resident(
    master_key: bytes, key_version: int, institution_id: uuid.UUID, resident_ref: str
) -> str:
    """Return the hex HMAC-SHA256 pseudonym of a resident reference, stable per institution and key version.

    Raises ValueError when the reference is empty after stripping surrounding whitespace.
    """
    # Case is kept: client numbers are the institution's own and "ab12" and "AB12" may be two residents.
    normalised = resident_ref.strip()
    if not normalised:
        raise ValueError("resident reference is empty")
    key = derive_institution_key(master_key, key_version, institution_id)
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def normalise_plate(value: str) -> str:
    """Return a vehicle plate as its letters and digits in upper case ("12-abc-3" -> "12ABC3")."""
    # NFKC folds look-alike forms (full-width digits); non-ASCII letters stay: German plates carry umlauts.
    plate = "".join(char for char in unicodedata.normalize("NFKC", value) if char.isalnum()).upper()
    if not 2 <= len(plate) <= 12:
        raise ValueError("not a vehicle plate")
    return plate


def normalise_phone(value: str) -> str:
    """Return a phone number in E.164, reading national numbers as Dutch ("06 12345678" -> "+31612345678")."""
    try:
        number = phonenumbers.parse(value, "NL")
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    # Possible, not valid: validity follows number-range metadata that changes between releases, and a
    # fingerprint must not change when the library is upgraded.
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=16)
def _fingerprint_key(service_key: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"visitor-fingerprint/v1")
    return hkdf.derive(service_key)


def fingerprint(service_key: bytes, value: str) -> str:
    """Return the hex HMAC-SHA256 of an already normalised value under the service-wide fingerprint key."""
    return hmac.new(_fingerprint_key(service_key), value.encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint_plate(service_key: bytes, raw: str) -> str:
    """Normalise a vehicle plate and fingerprint it: the same car, however written, gives one fingerprint."""
    return fingerprint(service_key, normalise_plate(raw))


def fingerprint_phone(service_key: bytes, raw: str) -> str:
    """Normalise a phone number to E.164 and fingerprint it: "06 ..." and "+31 6 ..." give one fingerprint."""
    return fingerprint(service_key, normalise_phone(raw))
