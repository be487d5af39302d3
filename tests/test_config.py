"""Settings come from an environment mapping: development generates its secrets, production refuses without them."""

from __future__ import annotations

import logging
import secrets
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.config import ConfigurationError, Settings, load_settings

TOKEN_SECRET = "t0ken-secret-" + "s" * 19  # exactly 32 characters
MASTER_KEY = "ab" * 32  # 32 bytes as hex: exactly 64 characters


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"INSTANCE_PATH": str(tmp_path), **variables}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _es256_keys(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "es256-private.pem"
    public = tmp_path / "es256-public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


# Development: secrets are generated once into the instance folder


def test_development_generates_both_secrets_into_the_instance_folder(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="service.config")
    settings = load_settings(_env(tmp_path))

    token_file, key_file = tmp_path / "token-secret", tmp_path / "pseudonym-master-key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pseudonym-master-key", "token-secret"]
    assert settings.environment == "development"
    assert settings.instance_path == tmp_path.resolve()
    assert settings.token_secret == token_file.read_text()
    assert len(settings.token_secret) == 64
    assert settings.pseudonym_master_key == bytes.fromhex(key_file.read_text())
    assert len(settings.pseudonym_master_key) == 32
    assert settings.token_secret != key_file.read_text()
    assert _mode(token_file) == 0o600
    assert _mode(key_file) == 0o600
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"generated a development secret in {token_file.resolve()}; set it explicitly in production",
        f"generated a development secret in {key_file.resolve()}; set it explicitly in production",
    ]


def test_development_reuses_the_generated_secrets_without_warning_again(tmp_path, caplog):
    first = load_settings(_env(tmp_path))
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="service.config")

    second = load_settings(_env(tmp_path))

    assert second.token_secret == first.token_secret
    assert second.pseudonym_master_key == first.pseudonym_master_key
    assert [r for r in caplog.records if r.name == "service.config"] == []


def test_development_creates_a_missing_instance_folder(tmp_path):
    instance = tmp_path / "nested" / "instance"
    settings = load_settings({"INSTANCE_PATH": str(instance)})
    assert (instance / "token-secret").read_text() == settings.token_secret
    assert _mode(instance / "pseudonym-master-key") == 0o600


def test_explicit_secrets_are_used_and_nothing_is_generated(tmp_path):
    settings = load_settings(_env(tmp_path, TOKEN_SECRET=TOKEN_SECRET, PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert settings.token_secret == TOKEN_SECRET
    assert settings.pseudonym_master_key == bytes.fromhex(MASTER_KEY)
    assert list(tmp_path.iterdir()) == []


def test_test_environment_is_accepted(tmp_path):
    assert load_settings(_env(tmp_path, APP_ENV="test")).environment == "test"


# Production: explicit keys or no start


def test_production_without_keys_names_both_missing_keys(tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV="production"))
    assert str(refused.value) == ("production needs explicit keys: TOKEN_SECRET (at least 32 characters), "
                                  "PSEUDONYM_MASTER_KEY (at least 32 bytes as hex)")
    assert list(tmp_path.iterdir()) == [], "production must never generate secrets"


def test_production_refuses_short_keys_without_echoing_them(tmp_path):
    short_secret = "s3cret-value-" + "x" * 18  # 31 characters
    short_key = "cd" * 31  # 62 hex characters
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV="production", TOKEN_SECRET=short_secret,
                           PSEUDONYM_MASTER_KEY=short_key))
    message = str(refused.value)
    assert "TOKEN_SECRET" in message and "PSEUDONYM_MASTER_KEY" in message
    assert short_secret not in message
    assert short_key not in message
    assert "s3cret" not in message and "cdcd" not in message


def test_production_names_only_the_key_that_is_missing(tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV="production", TOKEN_SECRET=TOKEN_SECRET))
    assert str(refused.value) == "production needs explicit keys: PSEUDONYM_MASTER_KEY (at least 32 bytes as hex)"
    assert TOKEN_SECRET not in str(refused.value)

    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV="production", PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert str(refused.value) == "production needs explicit keys: TOKEN_SECRET (at least 32 characters)"
    assert MASTER_KEY not in str(refused.value)


def test_production_with_both_keys_starts(tmp_path):
    settings = load_settings(_env(tmp_path, APP_ENV="production", TOKEN_SECRET=TOKEN_SECRET,
                                  PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert settings.production
    assert settings.token_secret == TOKEN_SECRET
    assert settings.pseudonym_master_key == bytes.fromhex(MASTER_KEY)
    assert list(tmp_path.iterdir()) == []


def test_secrets_are_read_from_files(tmp_path):
    secret_file, key_file = tmp_path / "secret.txt", tmp_path / "key.txt"
    secret_file.write_text(TOKEN_SECRET + "\n")  # Docker secrets usually end in a newline
    key_file.write_text(f"  {MASTER_KEY}\n")
    settings = load_settings(_env(tmp_path, APP_ENV="production", TOKEN_SECRET_FILE=str(secret_file),
                                  PSEUDONYM_MASTER_KEY_FILE=str(key_file)))
    assert settings.token_secret == TOKEN_SECRET
    assert settings.pseudonym_master_key == bytes.fromhex(MASTER_KEY)


def test_a_secret_file_wins_over_the_variable(tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(TOKEN_SECRET)
    settings = load_settings(_env(tmp_path, TOKEN_SECRET="from-the-variable", TOKEN_SECRET_FILE=str(secret_file),
                                  PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert settings.token_secret == TOKEN_SECRET


def test_a_missing_secret_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="TOKEN_SECRET_FILE"):
        load_settings(_env(tmp_path, TOKEN_SECRET_FILE=str(tmp_path / "absent")))


# Signing algorithm


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_es256_without_keys_is_refused(tmp_path, app_env):
    with pytest.raises(ConfigurationError, match="TOKEN_PRIVATE_KEY and TOKEN_PUBLIC_KEY"):
        load_settings(_env(tmp_path, APP_ENV=app_env, TOKEN_ALGORITHM="ES256", TOKEN_SECRET=TOKEN_SECRET,
                           PSEUDONYM_MASTER_KEY=MASTER_KEY))


def test_es256_with_only_a_private_key_is_refused(tmp_path):
    private, _public = _es256_keys(tmp_path)
    with pytest.raises(ConfigurationError, match="TOKEN_PRIVATE_KEY and TOKEN_PUBLIC_KEY"):
        load_settings(_env(tmp_path, APP_ENV="production", TOKEN_ALGORITHM="ES256",
                           TOKEN_PRIVATE_KEY_FILE=str(private), PSEUDONYM_MASTER_KEY=MASTER_KEY))


def test_es256_with_key_files_starts_in_production_without_a_shared_secret(tmp_path):
    private, public = _es256_keys(tmp_path)
    settings = load_settings(_env(tmp_path, APP_ENV="production", TOKEN_ALGORITHM="ES256",
                                  TOKEN_PRIVATE_KEY_FILE=str(private), TOKEN_PUBLIC_KEY_FILE=str(public),
                                  PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert settings.token_algorithm == "ES256"
    assert settings.token_private_key == private.read_text().strip()
    assert settings.token_public_key == public.read_text().strip()
    assert settings.token_secret == ""


@pytest.mark.parametrize("algorithm", ["none", "HS512", "hs256"])
def test_an_unknown_signing_algorithm_is_refused(tmp_path, algorithm):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, TOKEN_ALGORITHM=algorithm))
    assert str(refused.value) == "TOKEN_ALGORITHM must be one of HS256, ES256, RS256"


# Everything else


@pytest.mark.parametrize("app_env", ["staging", "prod", "Production", ""])
def test_an_unknown_app_env_is_refused(tmp_path, app_env):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV=app_env))
    assert str(refused.value) == "APP_ENV must be development, production or test"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_a_non_hex_master_key_is_refused_without_echoing_it(tmp_path, app_env):
    not_hex = "zq" * 32
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, APP_ENV=app_env, TOKEN_SECRET=TOKEN_SECRET, PSEUDONYM_MASTER_KEY=not_hex))
    assert str(refused.value) == "PSEUDONYM_MASTER_KEY must be hexadecimal"
    assert not_hex not in str(refused.value.__cause__)


def test_database_url_defaults_to_a_sqlite_file_in_the_instance_folder(tmp_path):
    settings = load_settings(_env(tmp_path))
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'risk-register.sqlite3'}"


def test_database_url_and_other_variables_are_read(tmp_path):
    settings = load_settings(_env(tmp_path, DATABASE_URL="postgresql+psycopg://app@db:5432/register",
                                  TOKEN_LIFETIME_SECONDS="300", TOKEN_ISSUER="urn:test", TOKEN_AUDIENCE="urn:aud",
                                  PSEUDONYM_KEY_VERSION="3", MAX_BODY_BYTES="1024", LOG_LEVEL="WARNING"))
    assert settings == Settings(
        environment="development", instance_path=tmp_path.resolve(),
        database_url="postgresql+psycopg://app@db:5432/register", token_algorithm="HS256",
        token_secret=settings.token_secret, token_lifetime_seconds=300, token_issuer="urn:test",
        token_audience="urn:aud", pseudonym_master_key=settings.pseudonym_master_key, pseudonym_key_version=3,
        max_body_bytes=1024, log_level="WARNING",
    )


def test_load_settings_reads_only_the_mapping_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")  # would be refused if os.environ were consulted
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://elsewhere/none")
    settings = load_settings(_env(tmp_path, TOKEN_SECRET=secrets.token_hex(16), PSEUDONYM_MASTER_KEY=MASTER_KEY))
    assert settings.environment == "development"
    assert settings.database_url.startswith("sqlite:///")


def test_a_non_numeric_number_is_a_configuration_error_naming_the_variable(tmp_path):
    with pytest.raises(ConfigurationError, match="TOKEN_LIFETIME_SECONDS"):
        load_settings(_env(tmp_path, TOKEN_LIFETIME_SECONDS="15m"))
