"""Keeping identities out of the register (DESIGN §4): resident pseudonyms and visitor fingerprints.

Pure functions, no Flask and no database, so ingest, corrections and tests share one definition. Screening text for
identifying data is `service.screening`, shared with the other domains.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import unicodedata
import uuid

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


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
