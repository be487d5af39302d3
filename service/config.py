"""Settings, read from the environment and nowhere else."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from service.clock import noon_in_amsterdam

log = logging.getLogger(__name__)

API_VERSION = "0.1.0"
SIGNING_ALGORITHMS = ("HS256", "ES256", "RS256")


class ConfigurationError(RuntimeError):
    """The environment does not describe a service that may start."""


@dataclass(frozen=True)
class KeyRing(Mapping[int, bytes]):
    """The versions of one kind of key, {version: secret}: every version is read, the `active` one writes.

    The active version is the newest unless the operator names another (while a new key reaches every host)."""

    entries: tuple[tuple[int, bytes], ...]
    active: int

    def __post_init__(self) -> None:
        if not self.entries or self.active not in dict(self.entries):
            raise ConfigurationError("a key ring needs its active version among its keys")

    def __getitem__(self, version: int) -> bytes:
        return dict(self.entries)[version]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(dict(self.entries)))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def oldest(self) -> int:
        return min(dict(self.entries))


@dataclass(frozen=True)
class TokenKeys:
    """The token signing keys by `kid`: the active one signs; every one listed verifies (secrets for HS256,
    public keys for ES256/RS256). A token without a `kid` (issued before key rings) is checked with the oldest."""

    algorithm: str
    active: str
    signing_key: str
    verifying: tuple[tuple[str, str], ...]

    def verifying_key(self, kid: str | None) -> str | None:
        keys = dict(self.verifying)
        return keys.get(self.verifying[0][0] if kid is None else kid)


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told. Each field maps to one environment variable (see README)."""

    environment: str = "development"
    instance_path: Path = Path("instance")
    database_url: str = ""
    token_algorithm: str = "HS256"
    token_secret: str = ""
    metrics_token: str = ""
    token_private_key: str = ""
    token_public_key: str = ""
    token_lifetime_seconds: int = 900
    token_issuer: str = "urn:risk-register"
    token_audience: str = "urn:risk-register:api"
    pseudonym_master_key: bytes = b""
    attestation_private_key: str = ""
    attestation_previous_public_keys: str = ""
    pseudonym_key_version: int = 1
    seal_interval_seconds: float = 0.25
    max_body_bytes: int = 2 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"
    rate_limit: str = "1200 per minute"
    token_rate_limit: str = "30 per minute"
    redis_url: str = ""
    retention_years: int = 5
    disclosure_k: int = 10
    dominance_n: int = 2
    dominance_share: float = 0.75
    clock_start: dt.datetime | None = None
    # Key rings as configured ((version, secret), ...); empty: derived from the single keys above, as before rings.
    pseudonym_key_ring: tuple[tuple[int, bytes], ...] = ()
    fingerprint_key_ring: tuple[tuple[int, bytes], ...] = ()
    export_key_ring: tuple[tuple[int, bytes], ...] = ()
    chain_key_ring: tuple[tuple[int, bytes], ...] = ()
    active_versions: tuple[tuple[str, int], ...] = ()  # kind -> the version that writes, when not the newest
    token_secret_ring: tuple[tuple[str, str], ...] = ()
    token_private_key_ring: tuple[tuple[str, str], ...] = ()
    token_public_key_ring: tuple[tuple[str, str], ...] = ()
    token_active_kid: str = ""

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def check_key_rings(self) -> None:
        """Raise ConfigurationError unless every ring holds its active version (building a ring checks it)."""
        for ring in ("pseudonym_keys", "fingerprint_keys", "export_keys", "chain_keys", "token_keys"):
            getattr(self, ring)

    def _ring(self, kind: str, configured: tuple[tuple[int, bytes], ...], derived_version: int = 1) -> KeyRing:
        keys = configured or ((derived_version, self.pseudonym_master_key),)
        return KeyRing(keys, dict(self.active_versions).get(kind, max(v for v, _ in keys)))

    @functools.cached_property  # built once per settings (read on every request)
    def pseudonym_keys(self) -> KeyRing:
        """Resident pseudonyms: PSEUDONYM_KEYS, or PSEUDONYM_MASTER_KEY at PSEUDONYM_KEY_VERSION."""
        return self._ring("pseudonym", self.pseudonym_key_ring, self.pseudonym_key_version)

    @functools.cached_property
    def fingerprint_keys(self) -> KeyRing:
        """Visitor fingerprints: FINGERPRINT_KEYS, or the master key as version 1."""
        return self._ring("fingerprint", self.fingerprint_key_ring)

    @functools.cached_property
    def export_keys(self) -> KeyRing:
        """The export domain: EXPORT_KEYS, or the master key as version 1."""
        return self._ring("export", self.export_key_ring)

    @functools.cached_property
    def chain_keys(self) -> KeyRing:
        """The access-log chain's key secrets by version: CHAIN_KEYS, or the master key as version 1. The chain
        derives its keys from them (service/audit/keys.py); the newest is the one `audit rotate-key` hands over
        to, so the chain has no active version of its own (the handover event in the chain says which applies)."""
        return self._ring("chain", self.chain_key_ring)

    @functools.cached_property
    def token_keys(self) -> TokenKeys:
        """TOKEN_SECRETS (HS256) or TOKEN_PRIVATE_KEYS and TOKEN_PUBLIC_KEYS; else the single key as before."""
        if self.token_algorithm == "HS256":
            verifying = self.token_secret_ring or (("1", self.token_secret),)
            private = verifying
        else:
            verifying = self.token_public_key_ring or ((key_id(self.token_public_key), self.token_public_key),)
            private = self.token_private_key_ring or ((verifying[0][0], self.token_private_key),)
        kid = self.token_active_kid or private[-1][0]
        if kid not in dict(private) or kid not in dict(verifying):
            raise ConfigurationError(f"the active token key {kid} needs its signing and its verifying key")
        return TokenKeys(self.token_algorithm, kid, dict(private)[kid], verifying)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def key_id(public_key_pem: str) -> str:
    """The kid of a public key given without one: the start of its PEM's SHA-256."""
    return hashlib.sha256(public_key_pem.encode()).hexdigest()[:16]


def _key_from_file_or_env(environ: Mapping[str, str], name: str) -> str:
    """A secret comes from NAME, or from the file named by NAME_FILE (Docker and Kubernetes secrets)."""
    if environ.get(f"{name}_FILE"):
        try:
            return Path(environ[f"{name}_FILE"]).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return environ.get(name, "")


def _number(environ: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, str(default)))
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number") from None


def _share(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(environ.get(name, str(default)))
    except ValueError:
        raise ConfigurationError(f"{name} must be a number such as 0.75") from None


def _clock_start(environ: Mapping[str, str], environment: str) -> dt.datetime | None:
    """CLOCK_START moves the service's clock (a demo on another day, the CI run on other dates): a day means noon
    in Amsterdam, a date-time needs its offset. Never in production: occurredAt checks and retention follow it."""
    text = environ.get("CLOCK_START", "")
    if not text:
        return None
    if environment == "production":
        raise ConfigurationError("CLOCK_START is for development and tests; production runs on the system clock")
    try:
        if len(text) == 10:
            return noon_in_amsterdam(dt.date.fromisoformat(text))
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError("CLOCK_START must be a day (2027-12-31) or a date-time with offset") from None
    if moment.tzinfo is None:
        raise ConfigurationError("CLOCK_START must be a day (2027-12-31) or a date-time with offset")
    return moment


KID = re.compile(r"[A-Za-z0-9._-]{1,40}")


def _entries(environ: Mapping[str, str], name: str, folder: Path, development: bool) -> list[tuple[str, str]]:
    """`label:value` entries separated by commas, from NAME, NAME_FILE or (outside production) the instance
    folder's file of that name (`pseudonym-keys` for PSEUDONYM_KEYS), where `risk-register keys` writes rings."""
    text = _key_from_file_or_env(environ, name)
    development_file = folder / name.lower().replace("_", "-")
    if not text and development and development_file.exists():
        text = development_file.read_text().strip()
    entries = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        label, _, value = entry.partition(":")
        if not KID.fullmatch(label.strip()) or not value.strip():
            raise ConfigurationError(f"{name} must be a comma-separated list of label:key entries")
        entries.append((label.strip(), value.strip()))
    if len({label for label, _ in entries}) < len(entries):
        raise ConfigurationError(f"{name} names one version twice")
    return entries


def _key_ring(environ: Mapping[str, str], name: str, folder: Path, development: bool
              ) -> tuple[tuple[int, bytes], ...]:
    """A ring of `version:hex` entries (whole versions from 1, keys of at least 32 bytes), oldest first."""
    ring = []
    for label, value in _entries(environ, name, folder, development):
        try:
            version, key = int(label), bytes.fromhex(value)
        except ValueError:
            raise ConfigurationError(f"{name} must hold version:hex entries (a whole version, a hex key)") from None
        if version < 1 or len(key) < 32:
            raise ConfigurationError(f"{name}: versions start at 1 and keys hold at least 32 bytes")
        ring.append((version, key))
    return tuple(sorted(ring))


def _active_versions(environ: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """PSEUDONYM_ACTIVE_VERSION and its siblings: the version that writes, when not the newest."""
    named = {"pseudonym": "PSEUDONYM_ACTIVE_VERSION", "fingerprint": "FINGERPRINT_ACTIVE_VERSION",
             "export": "EXPORT_ACTIVE_VERSION"}
    return tuple((kind, _number(environ, name, 0)) for kind, name in named.items() if environ.get(name))


def instance_path(environ: Mapping[str, str]) -> Path:
    """The folder for the SQLite database, generated development keys and gunicorn's control socket."""
    return Path(environ.get("INSTANCE_PATH", "instance")).resolve()


def log_format(environ: Mapping[str, str]) -> str:
    """LOG_FORMAT: `text` (default, for development) or `json` (one object per line, for the container)."""
    chosen = environ.get("LOG_FORMAT", "text")
    if chosen not in ("text", "json"):
        raise ConfigurationError("LOG_FORMAT must be text or json")
    return chosen


def log_level(environ: Mapping[str, str]) -> str:
    return environ.get("LOG_LEVEL", "INFO")


def _development_secret(folder: Path, filename: str) -> str:
    """Generate a secret once into the instance folder so a fresh checkout works without setup."""
    path = folder / filename
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        log.warning("generated a development secret in %s; set it explicitly in production", path)
    return path.read_text().strip()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment; refuse to start production without explicit keys."""
    env = os.environ if environ is None else environ
    environment = env.get("APP_ENV", "development")
    if environment not in ("development", "production", "test"):
        raise ConfigurationError("APP_ENV must be development, production or test")
    instance = instance_path(env)
    algorithm = env.get("TOKEN_ALGORITHM", "HS256")
    if algorithm not in SIGNING_ALGORITHMS:
        raise ConfigurationError(f"TOKEN_ALGORITHM must be one of {', '.join(SIGNING_ALGORITHMS)}")

    token_secret = _key_from_file_or_env(env, "TOKEN_SECRET")
    private_key = _key_from_file_or_env(env, "TOKEN_PRIVATE_KEY")
    public_key = _key_from_file_or_env(env, "TOKEN_PUBLIC_KEY")
    master_key = _key_from_file_or_env(env, "PSEUDONYM_MASTER_KEY")
    development = environment != "production"
    rings = {"pseudonym": _key_ring(env, "PSEUDONYM_KEYS", instance, development),
             "fingerprint": _key_ring(env, "FINGERPRINT_KEYS", instance, development),
             "export": _key_ring(env, "EXPORT_KEYS", instance, development),
             "chain": _key_ring(env, "CHAIN_KEYS", instance, development)}
    token_secrets = tuple(_entries(env, "TOKEN_SECRETS", instance, development))
    private_keys = tuple(_entries(env, "TOKEN_PRIVATE_KEYS", instance, development))
    public_keys = tuple(_entries(env, "TOKEN_PUBLIC_KEYS", instance, development))
    if not master_key and rings["pseudonym"]:
        # The other kinds' derived rings, idempotency and the chain start from the oldest pseudonym key.
        master_key = rings["pseudonym"][0][1].hex()
    token_secret = token_secret or (token_secrets[-1][1] if token_secrets else "")
    private_key, public_key = private_key or (private_keys[-1][1] if private_keys else ""), \
        public_key or (public_keys[-1][1] if public_keys else "")

    if environment == "production":
        missing = []
        if algorithm == "HS256" and min((len(s) for _, s in token_secrets), default=len(token_secret)) < 32:
            missing.append("TOKEN_SECRET (at least 32 characters)")
        if algorithm != "HS256" and not (private_key and public_key):
            missing.append("TOKEN_PRIVATE_KEY and TOKEN_PUBLIC_KEY")
        if len(master_key) < 64:
            missing.append("PSEUDONYM_MASTER_KEY (at least 32 bytes as hex)")
        if missing:
            raise ConfigurationError("production needs explicit keys: " + ", ".join(missing))
    else:
        if algorithm == "HS256" and not token_secret:
            token_secret = _development_secret(instance, "token-secret")
        if not master_key:
            master_key = _development_secret(instance, "pseudonym-master-key")
        if algorithm != "HS256" and not (private_key and public_key):
            raise ConfigurationError(f"TOKEN_ALGORITHM={algorithm} needs TOKEN_PRIVATE_KEY and TOKEN_PUBLIC_KEY")

    try:
        master_key_bytes = bytes.fromhex(master_key)
    except ValueError as exc:
        raise ConfigurationError("PSEUDONYM_MASTER_KEY must be hexadecimal") from exc

    default_db = f"sqlite:///{instance / 'risk-register.sqlite3'}"
    settings = Settings(
        environment=environment,
        instance_path=instance,
        database_url=env.get("DATABASE_URL", default_db),
        token_algorithm=algorithm,
        token_secret=token_secret,
        metrics_token=_key_from_file_or_env(env, "METRICS_TOKEN"),
        token_private_key=private_key,
        token_public_key=public_key,
        token_lifetime_seconds=_number(env, "TOKEN_LIFETIME_SECONDS", 900),
        token_issuer=env.get("TOKEN_ISSUER", "urn:risk-register"),
        token_audience=env.get("TOKEN_AUDIENCE", "urn:risk-register:api"),
        pseudonym_master_key=master_key_bytes,
        attestation_private_key=_key_from_file_or_env(env, "ATTESTATION_PRIVATE_KEY"),
        attestation_previous_public_keys=_key_from_file_or_env(env, "ATTESTATION_PREVIOUS_PUBLIC_KEYS"),
        pseudonym_key_version=_number(env, "PSEUDONYM_KEY_VERSION", 1),
        seal_interval_seconds=_share(env, "AUDIT_SEAL_INTERVAL", 0.25),
        max_body_bytes=_number(env, "MAX_BODY_BYTES", 2 * 1024 * 1024),
        log_level=log_level(env),
        log_format=log_format(env),
        rate_limit=env.get("RATE_LIMIT", "1200 per minute"),
        token_rate_limit=env.get("TOKEN_RATE_LIMIT", "30 per minute"),
        redis_url=env.get("REDIS_URL", ""),
        retention_years=_number(env, "RETENTION_YEARS", 5),
        disclosure_k=_number(env, "DISCLOSURE_K", 10),
        dominance_n=_number(env, "DISCLOSURE_DOMINANCE_N", 2),
        dominance_share=_share(env, "DISCLOSURE_DOMINANCE_SHARE", 0.75),
        clock_start=_clock_start(env, environment),
        pseudonym_key_ring=rings["pseudonym"],
        fingerprint_key_ring=rings["fingerprint"],
        export_key_ring=rings["export"],
        chain_key_ring=rings["chain"],
        active_versions=_active_versions(env),
        token_secret_ring=token_secrets,
        token_private_key_ring=private_keys,
        token_public_key_ring=public_keys,
        token_active_kid=env.get("TOKEN_ACTIVE_KID", ""),
    )
    try:
        settings.check_key_rings()
    except ConfigurationError as exc:
        raise ConfigurationError(f"key rings: {exc}") from None
    return settings
