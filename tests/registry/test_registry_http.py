"""Institutions and locations over HTTP: admin writes, tenancy for institution clients, pagination, problems."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.auth.models import Role
from service.registry.models import Capacity, Institution, Location, Sector, Setting
from tests.factories import make_institution, make_location

PROBLEM_JSON = "application/problem+json"


def institution_json(institution: Institution) -> dict[str, Any]:
    return {
        "id": str(institution.id),
        "name": institution.name,
        "sector": institution.sector.value,
        "municipalityCode": institution.municipality_code,
        "createdAt": institution.created_at.isoformat(),
    }


def location_json(location: Location) -> dict[str, Any]:
    return {
        "id": str(location.id),
        "institutionId": str(location.institution_id),
        "name": location.name,
        "postcode4": location.postcode4,
        "municipalityCode": location.municipality_code,
        "setting": location.setting.value,
        "capacities": [{"validFrom": c.valid_from.isoformat(), "places": c.places}
                       for c in sorted(location.capacities, key=lambda c: c.valid_from)],
        "createdAt": location.created_at.isoformat(),
    }


def invalid_input(body: dict[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
    """The problem document for invalid input, with the instance taken from the response."""
    return {
        "type": "about:blank",
        "title": "Invalid input",
        "status": 400,
        "detail": f"{len(errors)} invalid field(s); see errors.",
        "instance": body["instance"],
        "errors": errors,
    }


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def next_link(link: str) -> str:
    """The URL of a `Link: <url>; rel="next"` header (the only link the service sends)."""
    target, rel = link.split(";", 1)
    assert rel.strip() == 'rel="next"'
    assert target.startswith("<") and target.endswith(">")
    return target[1:-1]


# Institutions ---------------------------------------------------------------------------------------------------


def test_admin_registers_an_institution(client, token_for, session):
    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN),
                           json={"name": "Jeugdzorg Noord", "sector": "secureYouthCare",
                                 "municipalityCode": "GM0014"})

    assert response.status_code == 201, response.json
    body = response.json
    assert body == {"id": body["id"], "name": "Jeugdzorg Noord", "sector": "secureYouthCare",
                    "municipalityCode": "GM0014", "createdAt": body["createdAt"]}
    assert response.headers["Location"] == f"/v1/institutions/{body['id']}"
    stored = session.get(Institution, uuid.UUID(body["id"]))
    assert stored is not None
    assert institution_json(stored) == body
    assert dt.datetime.fromisoformat(body["createdAt"]).utcoffset() == dt.timedelta(0)


def test_admin_gets_an_institution(client, token_for, session):
    institution = make_institution(session, name="Opvang Zuid", sector=Sector.SHELTER, municipality_code="GM0034")

    response = client.get(f"/v1/institutions/{institution.id}", headers=token_for(Role.ADMIN))

    assert response.status_code == 200, response.json
    assert response.json == institution_json(institution)


def test_admin_pages_through_institutions_with_cursors(client, token_for, session):
    # Three share a timestamp, so the id breaks the tie and a page boundary falls inside the tie.
    same = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    created = [make_institution(session, created_at=same + dt.timedelta(seconds=s)) for s in (5, 0, 0, 0, 9)]
    expected = [institution_json(i) for i in sorted(created, key=lambda i: (i.created_at, i.id))]
    headers = token_for(Role.ADMIN)

    first = client.get("/v1/institutions?limit=2", headers=headers)
    assert first.status_code == 200, first.json
    cursor = first.json["nextCursor"]
    assert isinstance(cursor, str) and cursor
    assert first.json == {"items": expected[0:2], "nextCursor": cursor}
    url = next_link(first.headers["Link"])
    assert urlsplit(url).path == "/v1/institutions"
    assert parse_qs(urlsplit(url).query) == {"limit": ["2"], "cursor": [cursor]}

    second = client.get(url, headers=headers)
    assert second.status_code == 200, second.json
    cursor2 = second.json["nextCursor"]
    assert isinstance(cursor2, str) and cursor2 != cursor
    assert second.json == {"items": expected[2:4], "nextCursor": cursor2}
    assert parse_qs(urlsplit(next_link(second.headers["Link"])).query) == {"limit": ["2"], "cursor": [cursor2]}

    last = client.get(next_link(second.headers["Link"]), headers=headers)
    assert last.status_code == 200, last.json
    assert last.json == {"items": expected[4:], "nextCursor": None}
    assert "Link" not in last.headers

    seen = [i["id"] for page in (first, second, last) for i in page.json["items"]]
    assert seen == [e["id"] for e in expected]
    assert len(set(seen)) == 5

    # The same cursor gives the same page again: the order is stable.
    again = client.get(f"/v1/institutions?limit=2&cursor={cursor}", headers=headers)
    assert again.json == second.json


def test_a_full_last_page_has_no_next_link(client, token_for, session):
    created = [make_institution(session) for _ in range(2)]

    response = client.get("/v1/institutions?limit=2", headers=token_for(Role.ADMIN))

    assert response.status_code == 200, response.json
    assert response.json == {"items": [institution_json(i) for i in sorted(created, key=lambda i: (i.created_at,
                                                                                                       i.id))],
                             "nextCursor": None}
    assert "Link" not in response.headers


def test_invalid_institution_lists_every_field_and_creates_nothing(client, token_for, session):
    headers = token_for(Role.ADMIN)
    before = count(session, Institution)

    response = client.post("/v1/institutions", headers=headers,
                           json={"name": "", "sector": "hospital", "municipalityCode": "X", "website": "x.nl"})

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    body = response.json
    assert body == invalid_input(body, [
        {"pointer": "/name", "detail": "Length must be between 1 and 200."},
        {"pointer": "/sector", "detail": "Must be one of: youthCare, secureYouthCare, disabilityCare, "
                                         "mentalHealth, shelter, other."},
        {"pointer": "/municipalityCode", "detail": "Use a CBS municipality code such as GM0014."},
        {"pointer": "/website", "detail": "Unknown field."},
    ])
    assert body["instance"] == f"urn:request:{response.headers['X-Request-ID']}"
    assert count(session, Institution) == before


def test_missing_institution_fields_are_each_named(client, token_for, session):
    before = count(session, Institution)

    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN), json={})

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == invalid_input(response.json, [
        {"pointer": "/name", "detail": "Missing data for required field."},
        {"pointer": "/sector", "detail": "Missing data for required field."},
        {"pointer": "/municipalityCode", "detail": "Missing data for required field."},
    ])
    assert count(session, Institution) == before


def test_a_garbage_cursor_is_invalid_input(client, token_for, session):
    make_institution(session)

    response = client.get("/v1/institutions?cursor=not-a-cursor", headers=token_for(Role.ADMIN))

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == {
        "type": "about:blank", "title": "Invalid input", "status": 400,
        "detail": "The cursor is not one this service issued.", "instance": response.json["instance"],
        "errors": [{"pointer": "/cursor", "detail": "Not a valid cursor.", "in": "query"}],
    }


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
def test_a_limit_out_of_range_is_invalid_input(client, token_for, limit):
    response = client.get(f"/v1/institutions?limit={limit}", headers=token_for(Role.ADMIN))

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    body = response.json
    assert body == invalid_input(body, [{"pointer": "/limit", "detail": body["errors"][0]["detail"], "in": "query"}])
    assert body["errors"][0]["detail"]


def test_limit_200_is_allowed(client, token_for, session):
    institution = make_institution(session)

    response = client.get("/v1/institutions?limit=200", headers=token_for(Role.ADMIN))

    assert response.status_code == 200, response.json
    assert response.json == {"items": [institution_json(institution)], "nextCursor": None}


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
def test_analysts_and_auditors_may_not_list_institutions(client, token_for, session, role):
    make_institution(session)

    response = client.get("/v1/institutions", headers=token_for(role))

    assert response.status_code == 403
    assert response.mimetype == PROBLEM_JSON
    assert response.json == {"type": "about:blank", "title": "Forbidden", "status": 403,
                             "detail": "This client's role may not use this operation.",
                             "instance": response.json["instance"]}


def test_an_institution_client_may_not_register_institutions(client, token_for, session):
    headers = token_for(Role.INSTITUTION)
    before = count(session, Institution)

    response = client.post("/v1/institutions", headers=headers,
                           json={"name": "Eigen", "sector": "other", "municipalityCode": "GM0014"})

    assert response.status_code == 403
    assert response.mimetype == PROBLEM_JSON
    assert count(session, Institution) == before


# Tenancy of institution clients ---------------------------------------------------------------------------------


def test_an_institution_client_sees_only_its_own_institution(client, token_for, session):
    own = make_institution(session, name="Eigen")
    make_institution(session, name="Ander")
    make_institution(session, name="Derde")

    response = client.get("/v1/institutions", headers=token_for(Role.INSTITUTION, institution_id=own.id))

    assert response.status_code == 200, response.json
    assert response.json == {"items": [institution_json(own)], "nextCursor": None}


def test_an_institution_client_gets_its_own_institution(client, token_for, session):
    own = make_institution(session)

    response = client.get(f"/v1/institutions/{own.id}", headers=token_for(Role.INSTITUTION, institution_id=own.id))

    assert response.status_code == 200, response.json
    assert response.json == institution_json(own)


def test_another_institution_is_indistinguishable_from_a_missing_one(client, token_for, session):
    own, other = make_institution(session), make_institution(session)
    headers = token_for(Role.INSTITUTION, institution_id=own.id)

    hidden = client.get(f"/v1/institutions/{other.id}", headers=headers)
    missing = client.get(f"/v1/institutions/{uuid.uuid4()}", headers=headers)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.mimetype == missing.mimetype == PROBLEM_JSON
    assert hidden.json == {"type": "about:blank", "title": "Not Found", "status": 404,
                           "detail": "No such institution.", "instance": hidden.json["instance"]}
    assert hidden.json["instance"] != missing.json["instance"]
    assert {k: v for k, v in hidden.json.items() if k != "instance"} == \
        {k: v for k, v in missing.json.items() if k != "instance"}


def test_an_institution_client_lists_its_own_locations(client, token_for, session):
    own, other = make_institution(session), make_institution(session)
    mine = [make_location(session, own), make_location(session, own)]
    make_location(session, other)

    response = client.get(f"/v1/institutions/{own.id}/locations",
                          headers=token_for(Role.INSTITUTION, institution_id=own.id))

    assert response.status_code == 200, response.json
    assert response.json == {"items": [location_json(loc) for loc in sorted(mine, key=lambda x: (x.created_at,
                                                                                                      x.id))],
                             "nextCursor": None}


def test_an_institution_client_gets_its_own_location(client, token_for, session):
    own = make_institution(session)
    location = make_location(session, own)

    response = client.get(f"/v1/institutions/{own.id}/locations/{location.id}",
                          headers=token_for(Role.INSTITUTION, institution_id=own.id))

    assert response.status_code == 200, response.json
    assert response.json == location_json(location)


def test_another_institutions_locations_are_not_found(client, token_for, session):
    own, other = make_institution(session), make_institution(session)
    make_location(session, other)
    headers = token_for(Role.INSTITUTION, institution_id=own.id)

    hidden = client.get(f"/v1/institutions/{other.id}/locations", headers=headers)
    missing = client.get(f"/v1/institutions/{uuid.uuid4()}/locations", headers=headers)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.mimetype == PROBLEM_JSON
    assert hidden.json == {"type": "about:blank", "title": "Not Found", "status": 404,
                           "detail": "No such institution.", "instance": hidden.json["instance"]}
    assert {k: v for k, v in hidden.json.items() if k != "instance"} == \
        {k: v for k, v in missing.json.items() if k != "instance"}


def test_another_institutions_location_is_not_found(client, token_for, session):
    own, other = make_institution(session), make_institution(session)
    theirs = make_location(session, other)
    headers = token_for(Role.INSTITUTION, institution_id=own.id)
    expected = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such location."}

    for url in (f"/v1/institutions/{other.id}/locations/{theirs.id}",
                f"/v1/institutions/{own.id}/locations/{theirs.id}"):
        response = client.get(url, headers=headers)
        assert response.status_code == 404, url
        assert response.mimetype == PROBLEM_JSON
        assert response.json == expected | {"instance": response.json["instance"]}


def test_an_admin_gets_no_location_under_the_wrong_institution(client, token_for, session):
    first, second = make_institution(session), make_institution(session)
    location = make_location(session, first)

    response = client.get(f"/v1/institutions/{second.id}/locations/{location.id}", headers=token_for(Role.ADMIN))

    assert response.status_code == 404
    assert response.json["detail"] == "No such location."


# Locations and capacity ---------------------------------------------------------------------------------------


def location_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Huize Zon", "postcode4": "9712", "municipalityCode": "GM0014", "setting": "semiSecure",
            "capacities": [{"validFrom": "2024-01-01", "places": 12}]} | overrides


def test_admin_adds_a_location_with_its_capacity_history(client, token_for, session):
    institution = make_institution(session)
    capacities = [{"validFrom": "2024-01-01", "places": 12}, {"validFrom": "2025-07-01", "places": 16}]

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(capacities=capacities))

    assert response.status_code == 201, response.json
    body = response.json
    assert body == {"id": body["id"], "institutionId": str(institution.id), "name": "Huize Zon",
                    "postcode4": "9712", "municipalityCode": "GM0014", "setting": "semiSecure",
                    "capacities": capacities, "createdAt": body["createdAt"]}
    assert response.headers["Location"] == f"/v1/institutions/{institution.id}/locations/{body['id']}"
    stored = session.get(Location, uuid.UUID(body["id"]))
    assert stored is not None
    assert location_json(stored) == body


def test_a_new_locations_capacities_are_sorted_by_valid_from(client, token_for, session):
    institution = make_institution(session)
    given = [{"validFrom": "2025-07-01", "places": 16}, {"validFrom": "2023-01-01", "places": 8},
             {"validFrom": "2024-01-01", "places": 12}]

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(capacities=given))

    assert response.status_code == 201, response.json
    assert response.json["capacities"] == sorted(given, key=lambda c: c["validFrom"])


def test_a_location_read_back_has_its_capacities_sorted(client, token_for, session):
    institution = make_institution(session)
    given = [{"validFrom": "2025-07-01", "places": 16}, {"validFrom": "2023-01-01", "places": 8}]
    headers = token_for(Role.ADMIN)
    created = client.post(f"/v1/institutions/{institution.id}/locations", headers=headers,
                          json=location_body(capacities=given))
    assert created.status_code == 201, created.json

    response = client.get(f"/v1/institutions/{institution.id}/locations/{created.json['id']}", headers=headers)

    assert response.status_code == 200, response.json
    assert response.json == created.json | {"capacities": sorted(given, key=lambda c: c["validFrom"])}


def test_duplicate_valid_from_in_a_new_location_is_refused(client, token_for, session):
    institution = make_institution(session)
    before = count(session, Location), count(session, Capacity)

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(capacities=[{"validFrom": "2024-01-01", "places": 12},
                                                          {"validFrom": "2024-01-01", "places": 14}]))

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == invalid_input(response.json, [
        {"pointer": "/capacities", "detail": "Each validFrom may appear once."},
    ])
    assert (count(session, Location), count(session, Capacity)) == before


@pytest.mark.parametrize("postcode4", ["0123", "97123", "971", "97AB"])
def test_a_postcode_area_must_be_four_digits_not_starting_with_zero(client, token_for, session, postcode4):
    institution = make_institution(session)
    before = count(session, Location)

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(postcode4=postcode4))

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == invalid_input(response.json, [
        {"pointer": "/postcode4", "detail": "Use the four digits of a postcode, such as 9712."},
    ])
    assert count(session, Location) == before


def test_every_invalid_location_field_is_listed(client, token_for, session):
    institution = make_institution(session)
    before = count(session, Location)

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json={"name": "", "postcode4": "0123", "municipalityCode": "GM14", "setting": "closed",
                                 "capacities": [{"validFrom": "2024-01-01", "places": -1}], "beds": 3})

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == invalid_input(response.json, [
        {"pointer": "/name", "detail": "Length must be between 1 and 200."},
        {"pointer": "/postcode4", "detail": "Use the four digits of a postcode, such as 9712."},
        {"pointer": "/municipalityCode", "detail": "Use a CBS municipality code such as GM0014."},
        {"pointer": "/setting", "detail": "Must be one of: open, semiSecure, secure, shelter, dayCare."},
        {"pointer": "/capacities/0/places",
         "detail": "Must be greater than or equal to 0 and less than or equal to 10000."},
        {"pointer": "/beds", "detail": "Unknown field."},
    ])
    assert count(session, Location) == before


@pytest.mark.parametrize("capacities", [
    [{"validFrom": "2024-13-01", "places": 3}],
    [{"places": 3}],
    [{"validFrom": "2024-01-01", "places": 1}, {"validFrom": "yesterday", "places": 1}],
], ids=["impossible-date", "missing-date", "second-item-bad"])
def test_an_invalid_valid_from_in_a_capacity_is_invalid_input(client, token_for, session, capacities):
    institution = make_institution(session)

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(capacities=capacities))

    assert response.status_code == 400, response.json
    bad = len(capacities) - 1
    assert [e["pointer"] for e in response.json["errors"]] == [f"/capacities/{bad}/validFrom"]


def test_a_location_needs_at_least_one_capacity(client, token_for, session):
    institution = make_institution(session)

    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN),
                           json=location_body(capacities=[]))

    assert response.status_code == 400
    assert response.json == invalid_input(response.json, [
        {"pointer": "/capacities", "detail": "Length must be between 1 and 400."},
    ])


def test_a_location_for_a_missing_institution_is_not_found(client, token_for, session):
    before = count(session, Location)

    response = client.post(f"/v1/institutions/{uuid.uuid4()}/locations", headers=token_for(Role.ADMIN),
                           json=location_body())

    assert response.status_code == 404
    assert response.json == {"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "No such institution.", "instance": response.json["instance"]}
    assert count(session, Location) == before


def test_a_capacity_change_extends_the_history_in_order(client, token_for, session):
    location = make_location(session, setting=Setting.SECURE, capacities=[
        Capacity(valid_from=dt.date(2023, 1, 1), places=8), Capacity(valid_from=dt.date(2025, 1, 1), places=10)])
    url = f"/v1/institutions/{location.institution_id}/locations/{location.id}/capacities"

    response = client.post(url, headers=token_for(Role.ADMIN), json={"validFrom": "2024-03-01", "places": 9})

    assert response.status_code == 201, response.json
    assert response.json == location_json(location) | {"capacities": [
        {"validFrom": "2023-01-01", "places": 8},
        {"validFrom": "2024-03-01", "places": 9},
        {"validFrom": "2025-01-01", "places": 10},
    ]}
    stored = session.scalars(select(Capacity.valid_from).where(Capacity.location_id == location.id)
                             .order_by(Capacity.valid_from)).all()
    assert stored == [dt.date(2023, 1, 1), dt.date(2024, 3, 1), dt.date(2025, 1, 1)]


def test_a_second_capacity_from_the_same_date_conflicts(client, token_for, session):
    location = make_location(session)  # 12 places from 2024-01-01
    url = f"/v1/institutions/{location.institution_id}/locations/{location.id}/capacities"
    before = count(session, Capacity)

    response = client.post(url, headers=token_for(Role.ADMIN), json={"validFrom": "2024-01-01", "places": 20})

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert response.json == {"type": "about:blank", "title": "Conflict", "status": 409,
                             "detail": "The location already has a capacity from that date.",
                             "instance": response.json["instance"]}
    assert count(session, Capacity) == before


def test_a_capacity_change_after_an_http_one_on_the_same_date_conflicts(client, token_for, session):
    location = make_location(session)
    url = f"/v1/institutions/{location.institution_id}/locations/{location.id}/capacities"
    headers = token_for(Role.ADMIN)

    first = client.post(url, headers=headers, json={"validFrom": "2026-01-01", "places": 14})
    again = client.post(url, headers=headers, json={"validFrom": "2026-01-01", "places": 15})

    assert first.status_code == 201, first.json
    assert [c["validFrom"] for c in first.json["capacities"]] == ["2024-01-01", "2026-01-01"]
    assert again.status_code == 409
    assert again.mimetype == PROBLEM_JSON
    assert again.json["detail"] == "The location already has a capacity from that date."


def test_an_invalid_capacity_change_lists_its_fields(client, token_for, session):
    location = make_location(session)
    url = f"/v1/institutions/{location.institution_id}/locations/{location.id}/capacities"

    response = client.post(url, headers=token_for(Role.ADMIN), json={"places": 10_001, "note": "x"})

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == invalid_input(response.json, [
        {"pointer": "/validFrom", "detail": "Missing data for required field."},
        {"pointer": "/places", "detail": "Must be greater than or equal to 0 and less than or equal to 10000."},
        {"pointer": "/note", "detail": "Unknown field."},
    ])


def test_an_institution_client_may_not_change_capacity(client, token_for, session):
    location = make_location(session)
    url = f"/v1/institutions/{location.institution_id}/locations/{location.id}/capacities"
    before = count(session, Capacity)

    response = client.post(url, headers=token_for(Role.INSTITUTION, institution_id=location.institution_id),
                           json={"validFrom": "2026-01-01", "places": 1})

    assert response.status_code == 403
    assert response.mimetype == PROBLEM_JSON
    assert count(session, Capacity) == before


@pytest.mark.parametrize("code", ["GM0014\n", "GM\u0661\u0662\u0663\u0664", "GM00140", " GM0014"])
def test_a_municipality_code_must_be_exactly_gm_and_four_ascii_digits(client, token_for, session, code):
    before = count(session, Institution)
    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN),
                           json={"name": "X", "sector": "other", "municipalityCode": code})
    assert response.status_code == 400
    assert response.json["errors"] == [{"pointer": "/municipalityCode",
                                        "detail": "Use a CBS municipality code such as GM0014."}]
    assert count(session, Institution) == before
