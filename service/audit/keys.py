"""The access log's keys and what they sign: the chain keys (CHAIN_KEYS, a ring of versions) and the canonical
form of an event. Two signatures use them: the request's content MAC (written with the event, so that an event the
service did not write is found even before it is sealed) and the sealer's chain hash (service/audit/chain.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.audit.models import AccessEvent
from service.config import Settings


def chain_key(secret: bytes) -> bytes:
    """A chain key, derived from a secret of CHAIN_KEYS (version 1 when unset: the master key), which lives outside
    the database."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"access-log-chain/v1").derive(secret)


@dataclass(frozen=True)
class ChainKeys:
    """The chain's key versions, oldest first; the last one is the one new rotations hand over to."""

    keys: Mapping[int, bytes]

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        return cls.from_secrets(settings.chain_keys)

    @classmethod
    def from_secrets(cls, secrets: Mapping[int, bytes]) -> ChainKeys:
        """The chain keys derived from CHAIN_KEYS's secrets, by version."""
        return cls({version: chain_key(secret) for version, secret in sorted(secrets.items())})

    @property
    def active(self) -> int:
        return max(self.keys)

    @property
    def first(self) -> int:
        return min(self.keys)


def canonical(event: AccessEvent, *, linked: bool = True) -> bytes:
    """The bytes the chain hash covers: every recorded fact of the event and the previous event's hash (with
    `linked=False`, the bytes the content MAC covers: the facts alone)."""
    return json.dumps({
        "occurredAt": event.occurred_at.astimezone(dt.UTC).isoformat(), "eventType": event.event_type,
        "clientId": str(event.client_id) if event.client_id else None, "role": event.role,
        "actedFor": event.acted_for, "municipalityCode": event.municipality_code, "route": event.route,
        "records": list(event.records or []), "recordCount": event.record_count, "filters": event.filters or {},
        "outcome": event.outcome, "requestId": event.request_id, "prevHash": event.prev_hash if linked else None,
    }, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest(key: bytes, event: AccessEvent) -> str:
    """The chain hash of an event (with its prev_hash) under `key`."""
    return hmac.new(key, canonical(event), hashlib.sha256).hexdigest()


def content_mac(key: bytes, event: AccessEvent) -> str:
    """The content MAC of an event under `key`: what the request that wrote it signs."""
    return hmac.new(key, canonical(event, linked=False), hashlib.sha256).hexdigest()


