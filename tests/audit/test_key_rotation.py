"""Rotating the access log's chain key (CHAIN_KEYS): the handover is an event of the chain signed with the old key
and with the new one; verification walks across it, and refuses a forged handover or the old key used after it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from service import clock, create_app
from service.audit.chain import GENESIS, chain_head, rotate_chain_key, seal, verify_chain
from service.audit.keys import ChainKeys, chain_key, content_mac, digest
from service.audit.models import AccessEvent
from service.audit.service import EventType, append_event
from service.config import ConfigurationError, Settings, load_settings
from service.db import db
from service.errors import Conflict
from tests.factories import as_table_owner, seal_access_log

OLD, NEW = secrets.token_bytes(32), secrets.token_bytes(32)
BEFORE, AFTER = ChainKeys({1: OLD}), ChainKeys({1: OLD, 2: NEW})


def _append(session: Session, n: int, keys: ChainKeys = AFTER, route: str = "GET /v1/incidents") -> None:
    """n events written by a service that holds `keys` (by default the ring after the rotation)."""
    for i in range(n):
        append_event(session, keys, event_type=EventType.READ, route=route, outcome=200, request_id=f"r-{i}")


@pytest.fixture
def rotated(session: Session) -> AccessEvent:
    """Three events under version 1, the handover to version 2, two events under version 2; the handover."""
    _append(session, 3, BEFORE)
    seal_access_log(session, BEFORE)
    handover = rotate_chain_key(session, AFTER)
    _append(session, 2)
    seal_access_log(session, AFTER)
    return handover


def _sealed(session: Session) -> list[AccessEvent]:
    session.expire_all()
    return list(session.scalars(select(AccessEvent).where(AccessEvent.chain_seq.is_not(None))
                                .order_by(AccessEvent.chain_seq)))


def test_verification_walks_across_the_handover(session: Session, rotated: AccessEvent) -> None:
    events = _sealed(session)

    assert [e.key_version for e in events] == [1, 1, 1, 1, 2, 2]
    assert events[3].seq == rotated.seq and events[3].event_type == EventType.KEY_ROTATION
    assert events[3].filters == {"toVersion": "2"}
    assert events[3].hash == digest(OLD, events[3]) and events[3].handover_hash == digest(NEW, events[3])
    assert [e.handover_hash is None for e in events] == [True, True, True, False, True, True]
    result = verify_chain(session, AFTER)
    assert (result.valid, result.events, result.key_version, result.unsealed) == (True, 6, 2, 0)
    assert result.head == events[-1].hash


def test_a_verifier_without_the_new_key_stops_at_the_handover(session: Session, rotated: AccessEvent) -> None:
    result = verify_chain(session, BEFORE)

    assert (result.valid, result.first_broken) == (False, rotated.seq)
    assert result.problem == "it hands over to key version 2, which is not in CHAIN_KEYS"


def test_a_handover_forged_with_the_old_key_only_is_found(session: Session) -> None:
    """Someone holding the old key (the reason to rotate) hands the chain over to a key of their own."""
    _append(session, 2)
    seal_access_log(session, BEFORE)
    forged = rotate_chain_key(session, ChainKeys({1: OLD, 2: secrets.token_bytes(32)}))
    seal(session, ChainKeys({1: OLD, 2: secrets.token_bytes(32)}))
    _append(session, 1)
    seal_access_log(session, AFTER)

    result = verify_chain(session, AFTER)

    assert (result.valid, result.first_broken) == (False, forged.seq)
    assert result.problem == "its key handover is not signed with the new key (a forged handover)"


def test_the_old_key_is_refused_after_the_handover(session: Session, rotated: AccessEvent) -> None:
    """An event appended at the head and signed with the old key, as someone holding only that key could."""
    head = chain_head(session)
    as_table_owner(session)  # inserting an event already linked takes the owner's switching off of the trigger
    forged = AccessEvent(occurred_at=rotated.occurred_at, event_type=EventType.READ, route="GET /v1/incidents",
                         records=[], filters={}, outcome=200, chain_seq=head.chain_seq + 1, prev_hash=head.hash,
                         key_version=1)
    forged.hash = digest(OLD, forged)
    session.add(forged)
    session.flush()

    result = verify_chain(session, AFTER)

    assert (result.valid, result.first_broken) == (False, forged.seq)
    assert result.problem == "it is signed with key version 1 where 2 is in force (a key handover is missing or forged)"


def test_a_handover_stripped_of_its_new_signature_is_found(session: Session, rotated: AccessEvent) -> None:
    as_table_owner(session)
    session.get(AccessEvent, rotated.seq).handover_hash = None  # type: ignore[union-attr]
    session.flush()

    result = verify_chain(session, AFTER)

    assert (result.valid, result.first_broken) == (False, rotated.seq)


def test_an_event_the_service_did_not_write_is_found_once_sealed(session: Session) -> None:
    """The app's database role may insert events, but without the key it cannot sign their content: the sealer links
    such an event like any other, and verification names it."""
    _append(session, 2, BEFORE)
    session.execute(insert(AccessEvent).values(occurred_at=clock.now(), event_type=EventType.READ, route="GET /x",
                                               records=[], filters={}, outcome=200))
    injected = session.scalar(select(func.max(AccessEvent.seq)))
    _append(session, 1, BEFORE)
    seal_access_log(session, BEFORE)

    result = verify_chain(session, BEFORE)

    assert (result.valid, result.first_broken) == (False, injected)
    assert result.problem == "it carries no content MAC: the service did not write it"


def test_content_signed_with_the_old_key_after_the_handover_is_found(session: Session, rotated: AccessEvent) -> None:
    """Someone holding only the retired key signs an event's content, and lets the sealer link it."""
    forged = AccessEvent(occurred_at=clock.now(), event_type=EventType.READ, route="GET /x", records=[], filters={},
                         outcome=200, mac_version=1)
    forged.mac = content_mac(OLD, forged)
    session.add(forged)
    session.flush()
    seal_access_log(session, AFTER)

    result = verify_chain(session, AFTER)

    assert (result.valid, result.first_broken) == (False, forged.seq)
    assert result.problem == "its content MAC is wrong: the service did not write it, or not with a key in force"


def test_a_sealer_without_the_new_key_waits_at_the_handover(session: Session) -> None:
    _append(session, 2)
    seal_access_log(session, BEFORE)
    _append(session, 1)
    handover = rotate_chain_key(session, AFTER)
    _append(session, 2)

    assert seal_access_log(session, BEFORE) == 1  # the event before the handover; none after it with the old key
    assert chain_head(session).key_version == 1
    assert verify_chain(session, AFTER).unsealed == 3

    assert seal_access_log(session, AFTER) == 3
    events = _sealed(session)
    assert [(e.seq == handover.seq, e.key_version) for e in events][-3:] == [(True, 1), (False, 2), (False, 2)]
    assert verify_chain(session, AFTER).valid


def test_a_rotation_needs_a_newer_version(session: Session, rotated: AccessEvent) -> None:
    with pytest.raises(Conflict, match="already at key version 2"):
        rotate_chain_key(session, AFTER)
    pending = rotate_chain_key(session, ChainKeys({1: OLD, 2: NEW, 3: secrets.token_bytes(32)}))
    with pytest.raises(Conflict, match="already at key version 3"):  # one handover to 3 is already waiting
        rotate_chain_key(session, ChainKeys({1: OLD, 2: NEW, 3: secrets.token_bytes(32)}))
    assert pending.chain_seq is None


def test_a_new_chain_starts_at_the_newest_version(session: Session) -> None:
    if session.scalar(select(func.count()).select_from(AccessEvent)):
        pytest.skip("the test database already holds events")
    _append(session, 1)
    seal_access_log(session, AFTER)

    first = _sealed(session)[0]
    assert (first.prev_hash, first.key_version) == (GENESIS, 2)


# --- the ring in configuration ------------------------------------------------------------------------------------


def _ring(tmp_path: Path, text: str) -> Settings:
    return load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path), "CHAIN_KEYS": text})


def test_chain_keys_are_read_by_version_and_default_to_one_derived_from_the_master_key(tmp_path: Path) -> None:
    a, b = "aa" * 32, "bb" * 32
    assert dict(_ring(tmp_path, f"3:{b}, 1:{a}").chain_keys) == {1: bytes.fromhex(a), 3: bytes.fromhex(b)}
    master = secrets.token_bytes(32)
    default = ChainKeys.from_settings(Settings(pseudonym_master_key=master))
    assert default.keys == {1: chain_key(master)} and default.active == 1
    configured = ChainKeys.from_settings(_ring(tmp_path, f"1:{a},2:{b}"))
    assert configured.active == 2 and configured.keys[2] == chain_key(bytes.fromhex(b)) != configured.keys[1]


@pytest.mark.parametrize("text, message", [
    ("1:zz", "version:hex"), ("one:" + "aa" * 32, "version:hex"), ("1:" + "aa" * 8, "32 bytes"),
    ("0:" + "aa" * 32, "start at 1"),
])
def test_a_malformed_ring_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _ring(tmp_path, text)


def test_the_commands_rotate_seal_and_verify_across_the_handover(tmp_path: Path) -> None:
    from service import cli

    runner = CliRunner()
    one, two = "11" * 32, "22" * 32
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
           "APP_ENV": "development", "CHAIN_KEYS": f"1:{one}"}
    assert runner.invoke(cli.main, ["db", "upgrade"], env=env).exit_code == 0
    app = create_app(env)
    with app.app_context():
        _append(db.session, 2, app.extensions["chain_keys"])
        db.finish(commit=True)
    app.extensions["database"]["engine"].dispose()
    assert json.loads(runner.invoke(cli.main, ["audit", "seal"], env=env).output)["sealed"] == 2
    refused = runner.invoke(cli.main, ["audit", "rotate-key"], env=env)
    assert refused.exit_code == 1 and "already at key version 1" in refused.output

    env["CHAIN_KEYS"] = f"1:{one},2:{two}"
    rotated = runner.invoke(cli.main, ["audit", "rotate-key"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output) == {"keyVersion": 2}

    verified = runner.invoke(cli.main, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert (report["valid"], report["events"], report["keyVersion"], report["unsealed"]) == (True, 3, 2, 0)

    env["CHAIN_KEYS"] = f"1:{one}"
    assert runner.invoke(cli.main, ["audit", "verify"], env=env).exit_code == 1
