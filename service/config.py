"""Settings, read from the environment and nowhere else."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from service.clock import noon_in_amsterdam

log = logging.getLogger(__name__)

API_VERSION = "0.1.0"
SIGNING_ALGORITHMS = ("HS256", "ES256", "RS256")


class ConfigurationError(RuntimeError):
    """The environment does not describe a service that may start."""


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
    pseudonym_key_version: int = 1
    chain_keys: tuple[tuple[int, bytes], ...] = ()  # CHAIN_KEYS; empty: one key derived from the master key
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

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


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


def parse_chain_keys(text: str) -> tuple[tuple[int, bytes], ...]:
    """CHAIN_KEYS, `version:hex,version:hex,...`: the access log's chain keys, oldest first, the last one active.
    Versions rise; every key is at least 32 bytes. Empty text gives an empty ring (the default key applies)."""
    ring: list[tuple[int, bytes]] = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        version, _, hexkey = entry.partition(":")
        try:
            key = bytes.fromhex(hexkey)
            number = int(version)
        except ValueError:
            raise ConfigurationError("CHAIN_KEYS must read version:hex,version:hex,...") from None
        if len(key) < 32 or number < 1:
            raise ConfigurationError("CHAIN_KEYS: every version is at least 1 and every key 32 bytes or more")
        if ring and number <= ring[-1][0]:
            raise ConfigurationError("CHAIN_KEYS: list the versions oldest first, each higher than the one before")
        ring.append((number, key))
    return tuple(ring)


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

    if environment == "production":
        missing = []
        if algorithm == "HS256" and len(token_secret) < 32:
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
    return Settings(
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
        pseudonym_key_version=_number(env, "PSEUDONYM_KEY_VERSION", 1),
        chain_keys=parse_chain_keys(_key_from_file_or_env(env, "CHAIN_KEYS")),
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
    )
