"""Keeping identities out of the register (DESIGN §4): resident pseudonyms and visitor fingerprints.

Pure functions, no Flask and no database, so ingest, corrections and tests share one definition. Screening text for
identifying data is `service.screening`, shared with the other domains.

Keys rotate without the references (`risk-register keys rotate`): the value under the next key version is an HMAC
of the value under the one before, so stored values are re-keyed where they lie, and a reference is brought to any
version by the same chain from the oldest. A re-keyed pseudonym keeps its resident's contributor seed (two bytes:
the record key and noise of statistics, `contributor_seed`) in front, so released figures do not move.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import unicodedata
import uuid
from dataclasses import dataclass

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.config import KeyRing, Settings

SEED_HEX = 4  # a re-keyed pseudonym: 4 hex digits of contributor seed, a dot, 59 hex digits of HMAC (64 in all)


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


def contributor_seed(pseudonym: str) -> bytes:
    """Return the two bytes statistics take from a resident (record key, noise), the same under every key
    version: carried in front of a re-keyed pseudonym, else the start of SHA-256 of the first-version one."""
    if len(pseudonym) == 64 and pseudonym[SEED_HEX] == ".":
        return bytes.fromhex(pseudonym[:SEED_HEX])
    return hashlib.sha256(pseudonym.encode("utf-8")).digest()[:2]


def rekey_pseudonym(key: bytes, version: int, institution_id: uuid.UUID, pseudonym: str) -> str:
    """Return a pseudonym of the version before `version` as it is under `version` (whose master key is `key`)."""
    mac = hmac.new(derive_institution_key(key, version, institution_id), pseudonym.encode("utf-8"), hashlib.sha256)
    return f"{contributor_seed(pseudonym).hex()}.{mac.hexdigest()[:64 - SEED_HEX - 1]}"


def pseudonym_forms(ring: KeyRing, institution_id: uuid.UUID, resident_ref: str) -> dict[int, str]:
    """Return the resident's pseudonym under every version of the ring: the oldest directly, then the chain."""
    versions = list(ring)
    value = pseudonymise_resident(ring[versions[0]], versions[0], institution_id, resident_ref)
    forms = {versions[0]: value}
    for version in versions[1:]:
        value = forms[version] = rekey_pseudonym(ring[version], version, institution_id, value)
    return forms


def pseudonym_at(ring: KeyRing, institution_id: uuid.UUID, pseudonym: str, version: int) -> str:
    """Return a stored pseudonym of `version` as it is under the ring's active version (the chain, no reference)."""
    for later in (v for v in ring if version < v <= ring.active):
        pseudonym = rekey_pseudonym(ring[later], later, institution_id, pseudonym)
    return pseudonym


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
def _fingerprint_key(service_key: bytes, version: int) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"visitor-fingerprint/v%d" % version)
    return hkdf.derive(service_key)


def fingerprint(service_key: bytes, value: str, version: int = 1) -> str:
    """Return the hex HMAC-SHA256 of an already normalised value (or, re-keying, of the fingerprint of the version
    before) under the service-wide fingerprint key of that version."""
    return hmac.new(_fingerprint_key(service_key, version), value.encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint_forms(ring: KeyRing, normalised: str) -> dict[int, str]:
    """Return a normalised plate's or phone number's fingerprint under every version of the ring."""
    versions = list(ring)
    value = fingerprint(ring[versions[0]], normalised, versions[0])
    forms = {versions[0]: value}
    for version in versions[1:]:
        value = forms[version] = fingerprint(ring[version], value, version)
    return forms


def fingerprint_plate(service_key: bytes, raw: str) -> str:
    """Normalise a vehicle plate and fingerprint it: the same car, however written, gives one fingerprint."""
    return fingerprint(service_key, normalise_plate(raw))


def fingerprint_phone(service_key: bytes, raw: str) -> str:
    """Normalise a phone number to E.164 and fingerprint it: "06 ..." and "+31 6 ..." give one fingerprint."""
    return fingerprint(service_key, normalise_phone(raw))


def fingerprint_at(ring: KeyRing, value: str, version: int, to: int | None = None) -> str:
    """Return a fingerprint of `version` as it is under version `to` (default: the ring's active one), if later."""
    for later in (v for v in ring if version < v <= (ring.active if to is None else to)):
        value = fingerprint(ring[later], value, later)
    return value


@dataclass(frozen=True)
class IdentityKeys:
    """The keys that turn identities into pseudonyms and fingerprints: a master key at one version, or the rings
    of every version (`risk-register keys`), whose active version writes and whose every version is read."""

    master: bytes
    version: int
    pseudonym_ring: KeyRing | None = None
    fingerprint_ring: KeyRing | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityKeys:
        pseudonyms = settings.pseudonym_keys
        return cls(pseudonyms[pseudonyms.active], pseudonyms.active, pseudonyms, settings.fingerprint_keys)

    @property
    def pseudonyms(self) -> KeyRing:
        return self.pseudonym_ring or KeyRing(((self.version, self.master),), self.version)

    @property
    def fingerprints(self) -> KeyRing:
        return self.fingerprint_ring or KeyRing(((1, self.master),), 1)

    def residents(self, institution_id: uuid.UUID, resident_ref: str) -> dict[int, str]:
        """The resident's pseudonym under every key version (a lookup matches any: re-keying may be under way)."""
        return pseudonym_forms(self.pseudonyms, institution_id, resident_ref)

    def resident(self, institution_id: uuid.UUID, resident_ref: str) -> str:
        return self.residents(institution_id, resident_ref)[self.pseudonyms.active]

    def fingerprint(self, normalised: str) -> str:
        return fingerprint_forms(self.fingerprints, normalised)[self.fingerprints.active]
