"""The keys that sign the statements the service issues (attestations): compact JWS, ES256, with a `kid`.

The current private key comes from ATTESTATION_PRIVATE_KEY (PEM); in development it is generated once into the
instance folder, like the other development secrets. Public keys of earlier keys stay published (a ring, from
ATTESTATION_PREVIOUS_PUBLIC_KEYS), so a statement signed before a rotation still verifies; a key left out of the
ring no longer verifies anything it signed. The JWKS at /v1/oauth/jwks.json publishes them beside the token keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from service.config import ConfigurationError, Settings

log = logging.getLogger(__name__)

ALGORITHM = "ES256"
STATEMENT_TYPE = "JOSE"
DEVELOPMENT_KEY = "attestation-key.pem"
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
_ES256 = ECAlgorithm(ECAlgorithm.SHA256)


class InvalidStatement(ValueError):
    """A statement that does not verify: the message says why."""


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The public key as a JWK with its RFC 7638 thumbprint as `kid`."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise ConfigurationError("attestation keys must be EC P-256 keys (ES256)")
    jwk = json.loads(_ES256.to_jwk(public_key))
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).decode().rstrip("=")
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"], "kid": kid, "use": "sig",
            "alg": ALGORITHM}


@dataclass(frozen=True)
class SigningKeys:
    """The current signing key and every public key a statement may be verified with."""

    private_key: ec.EllipticCurvePrivateKey | None
    published: tuple[dict[str, Any], ...]

    @property
    def kid(self) -> str | None:
        return None if self.private_key is None else public_jwk(self.private_key.public_key())["kid"]

    def jwks(self) -> list[dict[str, Any]]:
        return list(self.published)

    def sign(self, statement: dict[str, Any]) -> str:
        """The statement as a compact JWS (the payload is its JSON, keys sorted)."""
        if self.private_key is None:
            raise ConfigurationError("no ATTESTATION_PRIVATE_KEY is configured")
        payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return jwt.api_jws.encode(payload, self.private_key, algorithm=ALGORITHM,
                                  headers={"kid": self.kid, "typ": STATEMENT_TYPE})


def _private_key(pem: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except ValueError:
        raise ConfigurationError("ATTESTATION_PRIVATE_KEY is not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigurationError("ATTESTATION_PRIVATE_KEY must be an EC P-256 key (ES256)")
    return key


def _development_key(folder: Path) -> str:
    """Generate an EC P-256 key once into the instance folder, so a fresh checkout signs without setup."""
    path = folder / DEVELOPMENT_KEY
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        log.warning("generated a development attestation key in %s; set ATTESTATION_PRIVATE_KEY in production",
                    path)
    return path.read_text()


def previous_public_keys(bundle: str) -> list[ec.EllipticCurvePublicKey]:
    """The public keys in a bundle of PEM blocks (ATTESTATION_PREVIOUS_PUBLIC_KEYS)."""
    keys = []
    for block in PEM_BLOCK.findall(bundle):
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ConfigurationError("ATTESTATION_PREVIOUS_PUBLIC_KEYS must hold EC P-256 public keys")
        keys.append(key)
    return keys


def signing_keys(settings: Settings) -> SigningKeys:
    """The keys of these settings; without a private key in production, statements cannot be issued (503)."""
    pem = settings.attestation_private_key
    if not pem and not settings.production:
        pem = _development_key(settings.instance_path)
    private_key = _private_key(pem) if pem else None
    public = [private_key.public_key()] if private_key else []
    public += previous_public_keys(settings.attestation_previous_public_keys)
    published = {jwk["kid"]: jwk for jwk in map(public_jwk, public)}
    return SigningKeys(private_key, tuple(published.values()))


def statement_kid(token: str) -> str | None:
    """The `kid` a compact JWS names (read without verifying)."""
    return jwt.get_unverified_header(token).get("kid")


def verify_statement(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The statement a compact JWS carries, once its signature verifies under the key its `kid` names in `jwks`;
    InvalidStatement otherwise (unknown or rotated-out key, any changed byte, another algorithm)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidStatement(f"not a compact JWS: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidStatement(f"signed with {header.get('alg')!r}, not {ALGORITHM}")
    matching = [key for key in jwks.get("keys", []) if key.get("kid") == header.get("kid")
                and key.get("kty") == "EC"]
    if not matching:
        raise InvalidStatement(f"no key with kid {header.get('kid')!r} in the JWKS (unknown or rotated out)")
    try:
        payload = jwt.api_jws.decode(token, _ES256.from_jwk(matching[0]), algorithms=[ALGORITHM])
    except jwt.InvalidTokenError as exc:
        raise InvalidStatement(f"the signature does not verify: {exc}") from None
    try:
        statement = json.loads(payload)
    except ValueError:
        raise InvalidStatement("the payload is not JSON") from None
    if not isinstance(statement, dict):
        raise InvalidStatement("the payload is not a JSON object")
    return statement
