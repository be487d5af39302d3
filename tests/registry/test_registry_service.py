"""Domain tests: registry and client services called directly, with a Caller and the test's session."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest
from sqlalchemy import func, select

from service import clock
from service.auth import service as auth_service
from service.auth.access import Caller
from service.auth.models import ApiClient, Role
from service.errors import Conflict, InvalidInput, NotFound
from service.registry import service
from service.registry.models import Capacity, Institution, Location, Sector, Setting
from tests.factories import make_client, make_institution, make_location


def admin() -> Caller:
    return Caller(uuid.uuid4(), Role.ADMIN, None, ())


def institution_caller(institution: Institution) -> Caller:
    return Caller(uuid.uuid4(), Role.INSTITUTION, institution.id, ())


def analyst() -> Caller:
    return Caller(uuid.uuid4(), Role.ANALYST, None, ("*",))


def ids(rows) -> set[uuid.UUID]:  # type: ignore[no-untyped-def]
    return {row.id for row in rows}


# Tenancy in the queries ---------------------------------------------------------------------------------------------


def test_visible_institutions_follow_the_callers_tenancy(session):
    own, other = make_institution(session), make_institution(session)

    assert ids(session.scalars(service.visible_institutions(admin()))) == {own.id, other.id}
    assert ids(session.scalars(service.visible_institutions(institution_caller(own)))) == {own.id}
    assert ids(session.scalars(service.visible_institutions(analyst()))) == set()
    auditor = Caller(uuid.uuid4(), Role.AUDITOR, None, ("GM0014",))
    assert ids(session.scalars(service.visible_institutions(auditor))) == set()


def test_visible_locations_follow_the_callers_tenancy(session):
    own, other = make_institution(session), make_institution(session)
    mine = {make_location(session, own).id, make_location(session, own).id}
    theirs = {make_location(session, other).id}

    assert ids(session.scalars(service.visible_locations(admin(), own.id))) == mine
    assert ids(session.scalars(service.visible_locations(admin(), other.id))) == theirs
    assert ids(session.scalars(service.visible_locations(institution_caller(own), own.id))) == mine
    assert ids(session.scalars(service.visible_locations(institution_caller(own), other.id))) == set()
    assert ids(session.scalars(service.visible_locations(analyst(), own.id))) == set()


def test_get_institution_hides_other_institutions(session):
    own, other = make_institution(session), make_institution(session)

    assert service.get_institution(session, institution_caller(own), own.id) is own
    assert service.get_institution(session, admin(), other.id) is other
    with pytest.raises(NotFound, match="No such institution"):
        service.get_institution(session, institution_caller(own), other.id)
    with pytest.raises(NotFound, match="No such institution"):
        service.get_institution(session, analyst(), own.id)


def test_get_location_of_another_institution_is_not_found(session):
    own, other = make_institution(session), make_institution(session)
    mine, theirs = make_location(session, own), make_location(session, other)

    assert service.get_location(session, institution_caller(own), own.id, mine.id) is mine
    with pytest.raises(NotFound, match="No such location"):
        service.get_location(session, institution_caller(own), other.id, theirs.id)
    with pytest.raises(NotFound, match="No such location"):
        service.get_location(session, institution_caller(own), own.id, theirs.id)
    with pytest.raises(NotFound, match="No such location"):
        service.get_location(session, admin(), own.id, theirs.id)


# Writes -------------------------------------------------------------------------------------------------------------


def test_create_institution_and_location(session):
    institution = service.create_institution(session, name="Huis", sector=Sector.MENTAL_HEALTH,
                                             municipality_code="GM0014")
    location = service.create_location(
        session, admin(), institution.id, name="Paviljoen", postcode4="9713", municipality_code="GM0014",
        setting=Setting.DAY_CARE,
        capacities=[{"valid_from": dt.date(2024, 1, 1), "places": 6}, {"valid_from": dt.date(2022, 1, 1), "places": 4}],
    )

    session.expire_all()
    stored = session.get(Location, location.id)
    assert stored is not None
    assert (stored.institution_id, stored.name, stored.postcode4, stored.setting) == \
        (institution.id, "Paviljoen", "9713", Setting.DAY_CARE)
    assert [(c.valid_from, c.places) for c in stored.capacities] == [(dt.date(2022, 1, 1), 4),
                                                                       (dt.date(2024, 1, 1), 6)]
    assert stored.created_at.tzinfo is not None


def test_create_location_for_a_hidden_institution_is_not_found(session):
    own, other = make_institution(session), make_institution(session)
    before = session.scalar(select(func.count()).select_from(Location))

    with pytest.raises(NotFound):
        service.create_location(session, institution_caller(own), other.id, name="x", postcode4="9712",
                                municipality_code="GM0014", setting=Setting.OPEN,
                                capacities=[{"valid_from": dt.date(2024, 1, 1), "places": 1}])
    assert session.scalar(select(func.count()).select_from(Location)) == before


def test_add_capacity_keeps_the_history_in_order(session):
    location = make_location(session)  # 12 places from 2024-01-01
    caller = admin()

    result = service.add_capacity(session, caller, location.institution_id, location.id,
                                  valid_from=dt.date(2023, 6, 1), places=10)

    assert [(c.valid_from, c.places) for c in result.capacities] == [(dt.date(2023, 6, 1), 10),
                                                                      (dt.date(2024, 1, 1), 12)]


def test_add_capacity_on_an_existing_date_conflicts(session):
    location = make_location(session)  # 12 places from 2024-01-01

    with pytest.raises(Conflict, match="already has a capacity from that date"):
        service.add_capacity(session, admin(), location.institution_id, location.id,
                             valid_from=dt.date(2024, 1, 1), places=20)
    rows = session.scalars(select(Capacity).where(Capacity.location_id == location.id)).all()
    assert [(c.valid_from, c.places) for c in rows] == [(dt.date(2024, 1, 1), 12)]


def test_add_capacity_to_another_institutions_location_is_not_found(session):
    own = make_institution(session)
    theirs = make_location(session)

    with pytest.raises(NotFound):
        service.add_capacity(session, institution_caller(own), theirs.institution_id, theirs.id,
                             valid_from=dt.date(2026, 1, 1), places=1)


# Clients: scope validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "scope", "pointers"), [
    (Role.INSTITUTION, {}, ["/institutionId"]),
    (Role.INSTITUTION, {"institution_id": "unknown"}, ["/institutionId"]),
    (Role.INSTITUTION, {"institution_id": "existing", "municipality_codes": ["GM0014"]}, ["/municipalityCodes"]),
    (Role.INSTITUTION, {"institution_id": "unknown", "municipality_codes": ["*"]},
     ["/institutionId", "/municipalityCodes"]),
    (Role.ANALYST, {}, ["/municipalityCodes"]),
    (Role.AUDITOR, {"municipality_codes": ["GM0014", "GM14", "gm0034"]},
     ["/municipalityCodes/1", "/municipalityCodes/2"]),
    (Role.ANALYST, {"municipality_codes": ["GM0014", "*"]}, ["/municipalityCodes"]),
    (Role.ANALYST, {"municipality_codes": ["X", "*"]}, ["/municipalityCodes/0", "/municipalityCodes"]),
    (Role.AUDITOR, {"institution_id": "existing", "municipality_codes": ["*"]}, ["/institutionId"]),
    (Role.ADMIN, {"municipality_codes": ["*"]}, ["/municipalityCodes"]),
    (Role.ADMIN, {"institution_id": "existing", "municipality_codes": ["GM0014"]},
     ["/institutionId", "/municipalityCodes"]),
], ids=["inst-none", "inst-unknown", "inst-with-codes", "inst-unknown-with-codes", "analyst-no-codes",
        "auditor-bad-codes", "analyst-star-combined", "analyst-bad-and-star", "auditor-with-inst", "admin-codes",
        "admin-inst-and-codes"])
def test_create_client_refuses_scopes_that_do_not_fit_the_role(session, role, scope, pointers):
    if scope.get("institution_id") == "existing":
        scope["institution_id"] = make_institution(session).id
    elif scope.get("institution_id") == "unknown":
        scope["institution_id"] = uuid.uuid4()
    before = session.scalar(select(func.count()).select_from(ApiClient))

    with pytest.raises(InvalidInput) as raised:
        auth_service.create_client(session, name="misfit", role=role, **scope)

    assert [e.pointer for e in raised.value.errors] == pointers
    assert all(e.location == "body" and e.detail for e in raised.value.errors)
    assert raised.value.detail == "The client's role and scope do not fit together."
    assert session.scalar(select(func.count()).select_from(ApiClient)) == before


def test_create_client_stores_a_sorted_scope_and_only_a_hash(session):
    api_client, secret = auth_service.create_client(session, name="Analist", role=Role.ANALYST,
                                                    municipality_codes=["GM0034", "GM0014", "GM0034"])

    session.expire_all()
    stored = session.get(ApiClient, api_client.id)
    assert stored is not None
    assert stored.municipality_codes == ["GM0014", "GM0034"]
    assert stored.active is True
    assert secret not in stored.secret_hash
    assert stored.secret_hash.startswith("$argon2")


# Clients: authentication and refusal --------------------------------------------------------------------------------


def test_authenticate_client_accepts_only_the_right_secret_of_an_active_client(session):
    api_client, secret = make_client(session, role=Role.ADMIN)
    other, other_secret = make_client(session, role=Role.ADMIN)

    assert auth_service.authenticate_client(session, str(api_client.id), secret) is api_client
    assert auth_service.authenticate_client(session, str(api_client.id), secret + "x") is None
    assert auth_service.authenticate_client(session, str(api_client.id), other_secret) is None
    assert auth_service.authenticate_client(session, str(api_client.id), "") is None
    assert auth_service.authenticate_client(session, str(uuid.uuid4()), secret) is None
    assert auth_service.authenticate_client(session, "not-a-uuid", secret) is None
    assert auth_service.authenticate_client(session, "", secret) is None
    assert auth_service.authenticate_client(session, str(other.id), other_secret) is other


def test_authenticate_client_refuses_a_deactivated_client(session):
    api_client, secret = make_client(session, role=Role.ADMIN)
    auth_service.deactivate_client(session, api_client.id)

    assert auth_service.authenticate_client(session, str(api_client.id), secret) is None


def test_rotate_secret_replaces_the_old_one(session):
    api_client, old = make_client(session, role=Role.ADMIN)

    rotated, new = auth_service.rotate_secret(session, api_client.id)

    assert rotated is api_client and new != old
    assert rotated.secret_rotated_at is not None
    assert auth_service.authenticate_client(session, str(api_client.id), old) is None
    assert auth_service.authenticate_client(session, str(api_client.id), new) is api_client


def test_rotate_secret_of_a_deactivated_client_conflicts(session):
    api_client, _secret = make_client(session, role=Role.ADMIN)
    auth_service.deactivate_client(session, api_client.id)

    with pytest.raises(Conflict):
        auth_service.rotate_secret(session, api_client.id)
    with pytest.raises(NotFound):
        auth_service.rotate_secret(session, uuid.uuid4())


def test_token_refused_for_revoked_deactivated_or_unknown_clients(session):
    api_client, _secret = make_client(session, role=Role.ADMIN)
    jti, other_jti = secrets.token_hex(16), secrets.token_hex(16)
    expires = clock.now() + dt.timedelta(minutes=15)

    assert auth_service.token_refused(session, jti, str(api_client.id)) is False

    auth_service.revoke_token(session, jti, api_client.id, expires)
    auth_service.revoke_token(session, jti, api_client.id, expires)  # idempotent
    assert auth_service.token_refused(session, jti, str(api_client.id)) is True
    assert auth_service.token_refused(session, other_jti, str(api_client.id)) is False

    assert auth_service.token_refused(session, other_jti, str(uuid.uuid4())) is True
    assert auth_service.token_refused(session, other_jti, "not-a-uuid") is True
    assert auth_service.token_refused(session, other_jti, "") is True

    auth_service.deactivate_client(session, api_client.id)
    assert auth_service.token_refused(session, other_jti, str(api_client.id)) is True


def test_token_claims_carry_the_scope_of_the_role(session):
    institution = make_institution(session)
    inst, _ = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    auditor, _ = make_client(session, role=Role.AUDITOR, municipality_codes=["GM0014"])
    admin_client, _ = make_client(session, role=Role.ADMIN)

    assert auth_service.token_claims(inst) == {"role": "institution", "inst": str(institution.id)}
    assert auth_service.token_claims(auditor) == {"role": "auditor", "muni": ["GM0014"]}
    assert auth_service.token_claims(admin_client) == {"role": "admin"}
