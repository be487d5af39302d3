"""`risk-register keys` (issue 19): rotate writes the ring with a new active version where the settings read it,
rekey moves what is stored, retire drops what nothing needs, status says where each kind stands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from service.cli import main
from service.config import load_settings
from service.keys.service import new_signing_key


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    runner = CliRunner()
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'keys.sqlite3'}"}

    def invoke(*args: str, **extra: str) -> Result:
        return runner.invoke(main, list(args), env=env | extra)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _status(cli: Any) -> dict[str, Any]:
    result = cli("keys", "status")
    assert result.exit_code == 0, result.output
    return {found["kind"]: found for found in map(json.loads, result.output.splitlines())}


def test_rotating_pseudonyms_from_the_command_line(cli, tmp_path):
    assert cli("demo").exit_code == 0
    before = _status(cli)["pseudonym"]
    assert before["activeVersion"] == 1 and before["versions"] == [1] and before["pending"] == 0
    residents = before["stored"]["1"]
    assert residents > 0

    rotated = _json(cli("keys", "rotate", "--kind", "pseudonym"))
    ring = tmp_path / "pseudonym-keys"
    assert rotated == {"kind": "pseudonym", "newVersion": 2, "files": {"PSEUDONYM_KEYS_FILE": str(ring)}}
    assert ring.stat().st_mode & 0o777 == 0o600
    settings = load_settings({"INSTANCE_PATH": str(tmp_path)})
    assert list(settings.pseudonym_keys) == [1, 2] and settings.pseudonym_keys.active == 2
    # Version 1 is the master key the register used so far: nothing already stored is lost.
    assert settings.pseudonym_keys[1] == bytes.fromhex((tmp_path / "pseudonym-master-key").read_text())
    assert _status(cli)["pseudonym"] | {"stored": None} == {
        "kind": "pseudonym", "activeVersion": 2, "versions": [1, 2], "stored": None, "pending": residents,
        "unknownVersions": []}

    rekeyed = _json(cli("keys", "rekey", "--kind", "pseudonym", "--batch", "3"))
    assert rekeyed["moved"] == residents and rekeyed["pending"] == 0 and rekeyed["stored"] == {"2": residents}
    refused = cli("keys", "retire", "--kind", "pseudonym")
    assert refused.exit_code == 1
    assert "pseudonym keys are not retired: new incidents reach a re-keyed resident" in refused.output


def test_token_and_export_keys_rotate_and_retire(cli, tmp_path):
    token = _json(cli("keys", "rotate", "--kind", "token"))
    assert token["newKid"] == "2"
    settings = load_settings({"INSTANCE_PATH": str(tmp_path)})
    assert [kid for kid, _ in settings.token_keys.verifying] == ["1", "2"] and settings.token_keys.active == "2"
    assert settings.token_keys.verifying_key("1") == (tmp_path / "token-secret").read_text()
    assert _json(cli("keys", "retire", "--kind", "token")) | {"files": None} == {
        "kind": "token", "retiredKids": ["1"], "activeKid": "2", "files": None}
    assert [kid for kid, _ in load_settings({"INSTANCE_PATH": str(tmp_path)}).token_keys.verifying] == ["2"]

    assert _json(cli("keys", "rotate", "--kind", "export"))["newVersion"] == 2
    assert _json(cli("keys", "retire", "--kind", "export"))["retiredVersions"] == [1]
    export = load_settings({"INSTANCE_PATH": str(tmp_path)}).export_keys
    assert list(export) == [2] and export.active == 2


def test_production_names_the_folder_for_new_rings(cli, tmp_path):
    production = {"APP_ENV": "production", "TOKEN_SECRET": "t" * 32, "PSEUDONYM_MASTER_KEY": "ab" * 32}
    refused = cli("keys", "rotate", "--kind", "fingerprint", **production)
    assert refused.exit_code == 2 and "--out" in refused.output
    written = _json(cli("keys", "rotate", "--kind", "fingerprint", "--out", str(tmp_path / "rings"), **production))
    assert written["files"] == {"FINGERPRINT_KEYS_FILE": str(tmp_path / "rings" / "fingerprint-keys")}
    ring = (tmp_path / "rings" / "fingerprint-keys").read_text().strip()
    assert ring.startswith("1:" + "ab" * 32 + ",2:")


def test_es256_keys_rotate_with_the_old_private_key_kept_until_retired(cli, tmp_path):
    kid, private, public = new_signing_key("ES256")
    (tmp_path / "private.pem").write_text(private)
    (tmp_path / "public.pem").write_text(public)
    es256 = {"TOKEN_ALGORITHM": "ES256", "TOKEN_PRIVATE_KEY_FILE": str(tmp_path / "private.pem"),
             "TOKEN_PUBLIC_KEY_FILE": str(tmp_path / "public.pem")}
    rotated = _json(cli("keys", "rotate", "--kind", "token", **es256))
    settings = load_settings({"INSTANCE_PATH": str(tmp_path), "TOKEN_ALGORITHM": "ES256"})
    keys = settings.token_keys
    assert [k for k, _ in keys.verifying] == [kid, rotated["newKid"]] and keys.active == rotated["newKid"]
    # Many hosts: the old key can go on signing while the new one reaches every host.
    held = load_settings({"INSTANCE_PATH": str(tmp_path), "TOKEN_ALGORITHM": "ES256", "TOKEN_ACTIVE_KID": kid})
    assert held.token_keys.active == kid and held.token_keys.signing_key == private.strip()

    # Retiring reads the rings rotate wrote (the instance folder), not the single keys they started from.
    retired = _json(cli("keys", "retire", "--kind", "token", TOKEN_ALGORITHM="ES256"))
    assert retired["retiredKids"] == [kid]
    after = load_settings({"INSTANCE_PATH": str(tmp_path), "TOKEN_ALGORITHM": "ES256"}).token_keys
    assert [k for k, _ in after.verifying] == [rotated["newKid"]]


def test_rotating_the_chain_key_hands_the_access_log_over_and_it_verifies_across(cli, tmp_path):
    assert cli("demo").exit_code == 0  # the demo's story logs its creates in the access log
    assert _json(cli("audit", "seal"))["sealed"] > 0  # under version 1 (an empty chain starts at the newest)
    assert _status(cli)["chain"] == {"kind": "chain", "activeVersion": 1, "versions": [1]}

    rotated = _json(cli("keys", "rotate", "--kind", "chain"))
    assert rotated == {"kind": "chain", "newVersion": 2,
                       "files": {"CHAIN_KEYS_FILE": str(tmp_path / "chain-keys")}}
    assert _json(cli("keys", "rekey", "--kind", "chain"))["moved"] == 1  # the handover event
    assert _json(cli("keys", "rekey", "--kind", "chain"))["moved"] == 0  # once
    assert _json(cli("audit", "seal"))["unsealed"] == 0

    verified = _json(cli("audit", "verify"))
    assert (verified["valid"], verified["keyVersion"], verified["unsealed"]) == (True, 2, 0)
    refused = cli("keys", "retire", "--kind", "chain")
    assert refused.exit_code != 0 and "every version it was sealed with" in refused.output
    # Without version 1 the chain cannot be walked: the ring without it fails verification.
    (tmp_path / "chain-keys").write_text((tmp_path / "chain-keys").read_text().splitlines()[-1].split(",")[-1])
    assert cli("audit", "verify").exit_code == 1
