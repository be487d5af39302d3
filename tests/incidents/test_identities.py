"""Domain tests for resident pseudonyms and visitor fingerprints (DESIGN §4); screening is tests/test_screening.py."""

import hashlib
import hmac
import re
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from service.incidents import identities
from service.incidents.identities import (
    derive_institution_key,
    fingerprint,
    fingerprint_phone,
    fingerprint_plate,
    normalise_phone,
    normalise_plate,
    pseudonymise_resident,
)

MASTER_KEY = bytes(range(32))
SERVICE_KEY = b"service-wide fingerprint key, 32b"
INSTITUTION = uuid.UUID("0b6a1c5e-2f4d-4e8a-9c3b-7d1e5f2a6b90")
OTHER_INSTITUTION = uuid.UUID("5d0c1c2a-8f3e-4b7a-a1d2-3e4f5a6b7c8d")
HEX64 = re.compile(r"[0-9a-f]{64}")


def rfc5869_sha256(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256, no salt, 32 bytes, written out from RFC 5869 to check the library call independently."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


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
