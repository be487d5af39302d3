"""Key rings in configuration (issue 19): `version:hex` lists (tokens by kid) from the variable, its _FILE, or the
instance folder in development; the newest version is active unless named; unset rings derive from the single
keys exactly as before; malformed rings are refused naming the variable and never echoing a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigurationError, load_settings

K1, K2, K3 = "11" * 32, "22" * 32, "33" * 32
MASTER = "ab" * 32
TOKEN = "t" * 32


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"INSTANCE_PATH": str(tmp_path), "TOKEN_SECRET": TOKEN, "PSEUDONYM_MASTER_KEY": MASTER, **variables}


def test_unset_rings_are_derived_from_the_single_keys_as_before(tmp_path):
    settings = load_settings(_env(tmp_path, PSEUDONYM_KEY_VERSION="3"))
    master = bytes.fromhex(MASTER)
    assert dict(settings.pseudonym_keys) == {3: master} and settings.pseudonym_keys.active == 3
    for ring in (settings.fingerprint_keys, settings.export_keys):
        assert dict(ring) == {1: master} and ring.active == 1
    assert dict(settings.chain_keys) == {1: master}
    assert settings.token_keys.verifying == (("1", TOKEN),) and settings.token_keys.active == "1"


def test_rings_are_read_newest_active_from_the_variable_or_its_file(tmp_path):
    ring_file = tmp_path / "secrets" / "fingerprints"
    ring_file.parent.mkdir()
    ring_file.write_text(f"2:{K2},\n1:{K1}\n")
    settings = load_settings(_env(tmp_path, PSEUDONYM_KEYS=f"1:{K1}, 3:{K3}", FINGERPRINT_KEYS_FILE=str(ring_file),
                                  EXPORT_KEYS=f"1:{K1},2:{K2}", EXPORT_ACTIVE_VERSION="1", CHAIN_KEYS=f"4:{K3}",
                                  TOKEN_SECRETS=f"a:{TOKEN},b:{'u' * 32}"))
    assert list(settings.pseudonym_keys) == [1, 3] and settings.pseudonym_keys.active == 3
    assert settings.pseudonym_keys[3] == bytes.fromhex(K3)
    assert list(settings.fingerprint_keys) == [1, 2] and settings.fingerprint_keys.active == 2
    assert settings.export_keys.active == 1  # named: the new key is known everywhere before it writes
    assert dict(settings.chain_keys) == {4: bytes.fromhex(K3)}
    assert settings.token_keys.active == "b" and settings.token_keys.signing_key == "u" * 32
    assert settings.token_keys.verifying_key("a") == TOKEN and settings.token_keys.verifying_key("c") is None


def test_a_ring_alone_stands_for_the_master_key(tmp_path):
    env = _env(tmp_path, APP_ENV="production", PSEUDONYM_KEYS=f"1:{K1},2:{K2}")
    del env["PSEUDONYM_MASTER_KEY"]
    settings = load_settings(env)
    assert settings.pseudonym_master_key == bytes.fromhex(K1)  # what the derived rings and the chain start from
    assert dict(settings.fingerprint_keys) == {1: bytes.fromhex(K1)}


def test_development_reads_rings_from_the_instance_folder(tmp_path):
    (tmp_path / "pseudonym-keys").write_text(f"1:{K1},2:{K2}\n")
    assert list(load_settings(_env(tmp_path)).pseudonym_keys) == [1, 2]
    production = load_settings(_env(tmp_path, APP_ENV="production"))
    assert list(production.pseudonym_keys) == [1]  # production reads only what it is given


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PSEUDONYM_KEYS", f"1:{K1},zz", "PSEUDONYM_KEYS must be a comma-separated list of label:key entries"),
    ("PSEUDONYM_KEYS", f"one:{K1}", "PSEUDONYM_KEYS must hold version:hex entries (a whole version, a hex key)"),
    ("FINGERPRINT_KEYS", "1:" + "zq" * 32, "FINGERPRINT_KEYS must hold version:hex entries (a whole version, a hex "
                                           "key)"),
    ("EXPORT_KEYS", "1:abcd", "EXPORT_KEYS: versions start at 1 and keys hold at least 32 bytes"),
    ("CHAIN_KEYS", f"0:{K1}", "CHAIN_KEYS: versions start at 1 and keys hold at least 32 bytes"),
    ("PSEUDONYM_KEYS", f"1:{K1},1:{K2}", "PSEUDONYM_KEYS names one version twice"),
    ("TOKEN_SECRETS", f"a b:{TOKEN}", "TOKEN_SECRETS must be a comma-separated list of label:key entries"),
])
def test_malformed_rings_are_refused_without_echoing_a_key(tmp_path, name, value, message):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env(tmp_path, **{name: value}))
    assert str(refused.value) == message
    assert K1 not in str(refused.value) and K2 not in str(refused.value)


def test_an_active_version_outside_the_ring_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="key rings: a key ring needs its active version among its keys"):
        load_settings(_env(tmp_path, PSEUDONYM_KEYS=f"1:{K1}", PSEUDONYM_ACTIVE_VERSION="2"))
    with pytest.raises(ConfigurationError, match="the active token key c needs its signing and its verifying key"):
        load_settings(_env(tmp_path, TOKEN_SECRETS=f"a:{TOKEN}", TOKEN_ACTIVE_KID="c"))
