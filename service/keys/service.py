"""What `risk-register keys` does for each kind of key. Rings live in configuration (service.config), written here
as files in the environment variables' own format (`version:hex,...`) for the operator to deploy.

A kind is one entry of KINDS: its ring's variable(s), how to re-key what is stored under older versions (None when
nothing is stored), and whether older versions may be retired. Adding a kind is adding an entry.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.audit.chain import rotate_chain_key
from service.audit.keys import ChainKeys
from service.config import KeyRing, Settings, key_id
from service.errors import Conflict
from service.incidents import rekeying

KEY_BYTES = 32


@dataclass(frozen=True)
class Kind:
    """One kind of key: the ring in the settings, how stored values move to its active version, and why (if so)
    its older versions cannot be retired."""

    variable: str
    ring: Callable[[Settings], KeyRing] | None  # None: keys by kid (tokens, `settings.token_keys`)
    rekey: Callable[[Session, KeyRing, int], int] | None = None
    progress: Callable[[Session], Mapping[int, int]] | None = None
    kept_because: str = ""


KINDS: dict[str, Kind] = {
    "pseudonym": Kind(
        "PSEUDONYM_KEYS", lambda s: s.pseudonym_keys, rekeying.rekey_residents, rekeying.resident_progress,
        kept_because="new incidents reach a re-keyed resident through the chain from the oldest key; once re-keying "
                     "is complete the old keys need no secrecy, but they stay in the ring"),
    "fingerprint": Kind(
        "FINGERPRINT_KEYS", lambda s: s.fingerprint_keys, rekeying.rekey_fingerprints,
        rekeying.fingerprint_progress,
        kept_because="new fingerprints are brought to the active version through the chain from the oldest key; "
                     "once re-keying is complete the old keys need no secrecy, but they stay in the ring"),
    "export": Kind("EXPORT_KEYS", lambda s: s.export_keys),
    "chain": Kind(
        "CHAIN_KEYS", lambda s: s.chain_keys, lambda session, ring, _batch: hand_over_chain(session, ring),
        kept_because="verifying the access log walks it from its first event, under every version it was sealed "
                     "with"),
    "token": Kind("TOKEN_SECRETS", None),
}


def hand_over_chain(session: Session, ring: KeyRing) -> int:
    """The access log's re-keying: one handover event to the ring's newest version, which the sealer signs with
    the old and the new key (1), or nothing when the chain is at or moving to that version already (0)."""
    try:
        rotate_chain_key(session, ChainKeys.from_secrets(ring))
    except Conflict:
        return 0
    return 1


class KeyCommandError(RuntimeError):
    """The command cannot do what was asked; the message says why and what to do instead."""


def _ring(spec: Kind, settings: Settings) -> KeyRing:
    if spec.ring is None:
        raise KeyCommandError(f"{spec.variable} is a ring by kid, not by version")
    return spec.ring(settings)


def ring_file(folder: Path, variable: str) -> Path:
    """Where a ring is written: the file the development settings read (`pseudonym-keys` for PSEUDONYM_KEYS)."""
    return folder / variable.lower().replace("_", "-")


def _write(path: Path, entries: list[tuple[str, str]]) -> Path:
    """Write `label:value` entries as one comma-separated line, readable only by the owner, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(",".join(f"{label}:{value}" for label, value in entries) + "\n")
    partial.replace(path)
    return path


def _ring_entries(ring: Mapping[int, bytes]) -> list[tuple[str, str]]:
    return [(str(version), ring[version].hex()) for version in ring]


def new_signing_key(algorithm: str) -> tuple[str, str, str]:
    """A new (kid, private PEM or secret, public PEM or secret) for the algorithm."""
    if algorithm == "HS256":
        secret = secrets.token_hex(KEY_BYTES)
        return "", secret, secret
    key = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" \
        else rsa.generate_private_key(public_exponent=65537, key_size=3072)
    # Stripped, as settings read them: the kid of a key given without one is taken from this text.
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode().strip()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip()
    return key_id(public), private, public


def add_key(settings: Settings, kind: str, folder: Path) -> dict[str, Any]:
    """Write the kind's ring with a new newest version (or kid) into `folder`; return what to deploy."""
    if kind == "token":
        keys = settings.token_keys
        kid, private, public = new_signing_key(keys.algorithm)
        if keys.algorithm == "HS256":
            kid = str(max((int(k) for k, _ in keys.verifying if k.isdigit()), default=0) + 1)
            path = _write(ring_file(folder, "TOKEN_SECRETS"), [*keys.verifying, (kid, private)])
            return {"kind": kind, "newKid": kid, "files": {"TOKEN_SECRETS_FILE": str(path)}}
        # The old private key stays until retired: on many hosts it signs until the new kid is made active.
        signing = settings.token_private_key_ring or ((keys.active, keys.signing_key),)
        private_path = _write(ring_file(folder, "TOKEN_PRIVATE_KEYS"), [*signing, (kid, private)])
        public_path = _write(ring_file(folder, "TOKEN_PUBLIC_KEYS"), [*keys.verifying, (kid, public)])
        return {"kind": kind, "newKid": kid, "files": {"TOKEN_PRIVATE_KEYS_FILE": str(private_path),
                                                        "TOKEN_PUBLIC_KEYS_FILE": str(public_path)}}
    spec = KINDS[kind]
    ring = _ring(spec, settings)
    version = max(ring) + 1
    path = _write(ring_file(folder, spec.variable),
                  [*_ring_entries(ring), (str(version), secrets.token_hex(KEY_BYTES))])
    return {"kind": kind, "newVersion": version, "files": {f"{spec.variable}_FILE": str(path)}}


def retire_keys(settings: Settings, kind: str, folder: Path) -> dict[str, Any]:
    """Write the kind's ring with only its active version (or kid): older ones stop verifying or decrypting."""
    if kind == "token":
        keys = settings.token_keys
        retired = [kid for kid, _ in keys.verifying if kid != keys.active]
        if keys.algorithm == "HS256":
            path = _write(ring_file(folder, "TOKEN_SECRETS"), [(keys.active, keys.signing_key)])
            files = {"TOKEN_SECRETS_FILE": str(path)}
        else:
            public = dict(keys.verifying)[keys.active]
            files = {"TOKEN_PRIVATE_KEYS_FILE": str(_write(ring_file(folder, "TOKEN_PRIVATE_KEYS"),
                                                           [(keys.active, keys.signing_key)])),
                     "TOKEN_PUBLIC_KEYS_FILE": str(_write(ring_file(folder, "TOKEN_PUBLIC_KEYS"),
                                                          [(keys.active, public)]))}
        return {"kind": kind, "retiredKids": retired, "activeKid": keys.active, "files": files}
    spec = KINDS[kind]
    if spec.kept_because:
        raise KeyCommandError(f"{kind} keys are not retired: {spec.kept_because}")
    ring = _ring(spec, settings)
    path = _write(ring_file(folder, spec.variable), [(str(ring.active), ring[ring.active].hex())])
    return {"kind": kind, "retiredVersions": [v for v in ring if v != ring.active], "activeVersion": ring.active,
            "files": {f"{spec.variable}_FILE": str(path)}}


def rotate_stored(settings: Settings, kind: str, engine: Engine, *, batch: int = 200,
                  max_batches: int | None = None,
                  after_batch: Callable[[int], None] = lambda _moved: None) -> dict[str, Any]:
    """Re-key what is stored under older versions to the active one, one committed batch at a time (a run that
    stops resumes where it stopped); return the progress. Kinds that store nothing just report their ring."""
    spec = KINDS[kind]
    if spec.rekey is None:
        return status(settings, kind, engine)
    ring = _ring(spec, settings)
    # SQLite: take the write lock at BEGIN, as requests do; a batch reads, then writes.
    bind = engine.execution_options(immediate=True) if engine.dialect.name == "sqlite" else engine
    moved, batches = 0, 0
    while max_batches is None or batches < max_batches:
        with Session(bind, expire_on_commit=False) as session:
            count = spec.rekey(session, ring, batch)
            session.commit()
        if not count:
            break
        moved, batches = moved + count, batches + 1
        after_batch(count)
    return status(settings, kind, engine) | {"moved": moved}


def status(settings: Settings, kind: str, engine: Engine) -> dict[str, Any]:
    """The kind's versions, the active one, and (for stored kinds) how many values are still under older ones."""
    if kind == "token":
        keys = settings.token_keys
        return {"kind": kind, "algorithm": keys.algorithm, "activeKid": keys.active,
                "kids": [kid for kid, _ in keys.verifying]}
    spec = KINDS[kind]
    ring = _ring(spec, settings)
    found: dict[str, Any] = {"kind": kind, "activeVersion": ring.active, "versions": list(ring)}
    if spec.progress is not None:
        with Session(engine) as session:
            stored = dict(spec.progress(session))
        found |= {"stored": {str(v): n for v, n in sorted(stored.items())},
                  "pending": sum(n for v, n in stored.items() if v < ring.active),
                  "unknownVersions": sorted(v for v in stored if v not in ring)}
    return found
