"""Demo data for `make run`: the municipality of Groningen (GM0014) with three institutions."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import clock
from service.audit.keys import ChainKeys
from service.audit.service import EventType, append_event
from service.auth import service as auth
from service.auth.access import Caller
from service.auth.models import ApiClient, Role
from service.incidents.models import Incident
from service.incidents.rules import incident_errors
from service.incidents.service import IdentityKeys, correct_incident, record_incidents, retract_incident
from service.registry.models import Capacity, Institution, Location, Sector, Setting
from service.taxonomy.service import load_taxonomy

GRONINGEN = "GM0014"
HOTSPOT = "Woongroep Oosterpoort"
INSTITUTIONS = [
    ("Jeugdzorg Stad Groningen", Sector.YOUTH_CARE, [
        ("Woongroep Oosterpoort", "9724", Setting.OPEN, [(dt.date(2023, 1, 1), 12), (dt.date(2025, 7, 1), 16)]),
        ("Gezinshuis Selwerd", "9741", Setting.OPEN, [(dt.date(2023, 1, 1), 6)]),
        ("Kamertraining Paddepoel", "9742", Setting.OPEN, [(dt.date(2024, 3, 1), 10)]),
    ]),
    ("Accare Gesloten Jeugdzorg Noord", Sector.SECURE_YOUTH_CARE, [
        ("Behandelgroep Hoogkerk", "9745", Setting.SECURE, [(dt.date(2023, 1, 1), 24)]),
        ("Open groep Beijum", "9736", Setting.SEMI_SECURE, [(dt.date(2023, 1, 1), 14), (dt.date(2026, 1, 1), 10)]),
    ]),
    ("Stichting Opvang Noord", Sector.SHELTER, [
        ("Crisisopvang Centrum", "9712", Setting.SHELTER, [(dt.date(2023, 1, 1), 20)]),
        ("Dagbesteding Vinkhuizen", "9743", Setting.DAY_CARE, [(dt.date(2023, 6, 1), 30)]),
    ]),
]
DEMO_CLIENTS = {
    Role.INSTITUTION: "demo-institution",
    Role.ANALYST: "demo-analyst",
    Role.AUDITOR: "demo-auditor",
    Role.ADMIN: "demo-admin",
}


def _institution(session: Session, name: str, sector: Sector, locations: list) -> Institution:  # type: ignore[type-arg]
    institution = session.scalar(select(Institution).where(Institution.name == name))
    if institution is not None:
        return institution
    institution = Institution(name=name, sector=sector, municipality_code=GRONINGEN)
    session.add(institution)
    session.flush()
    for loc_name, postcode4, setting, capacities in locations:
        session.add(Location(institution_id=institution.id, name=loc_name, postcode4=postcode4,
                             municipality_code=GRONINGEN, setting=setting,
                             capacities=[Capacity(valid_from=d, places=p) for d, p in capacities]))
    session.flush()
    return institution


def _demo_incident(rng: random.Random, location: Location, occurred_at: dt.datetime, serial: int,
                   residents: list[str], now: dt.datetime) -> dict[str, Any]:
    """One plausible signal: absences repeat for the same residents, a share is followed up and reported."""
    taxonomy = load_taxonomy()
    kind = rng.choices(["absence", "recruitmentAttempt", "suspiciousVisitor"], weights=[5, 3, 2])[0]
    indicators = sorted(taxonomy.indicators_for(kind))
    item: dict[str, Any] = {
        "client_reference": f"DEMO-{serial:05d}", "location_id": location.id, "kind": kind,
        "exploitation_type": rng.choices(["criminal", "sexual", "labour", "unknown"], weights=[5, 4, 1, 2])[0],
        "occurred_at": occurred_at, "resident_age_band": rng.choice(["12to15", "16to17", "16to17", "18to22"]),
        "indicators": rng.sample(indicators, k=rng.randint(1, 3)),
        # Absences repeat: a few residents account for many of them, as in real missing-from-care data.
        "resident_ref": rng.choice(residents[:3] if kind == "absence" and rng.random() < 0.4 else residents),
    }
    if kind == "absence":
        item["absence"] = {"ended_at": min(occurred_at + dt.timedelta(hours=rng.randint(2, 40)), now),
                           "whereabouts_known": rng.random() < 0.5,
                           "risk_level": rng.choice(["green", "orange", "red"]),
                           "reported_missing_to_police": rng.random() < 0.3}
    if kind == "suspiciousVisitor":
        item["visitor"] = {"estimated_age_band": "23plus", "relation_claimed": rng.choice(["friend", "unknown"]),
                           "vehicle_plate": f"{rng.choice(['GX', 'HZ', 'KL'])}-{rng.randint(100, 999)}-B"}
    step = rng.choices([None, 1, 2, 3, 5], weights=[3, 3, 2, 1, 1])[0]
    reported = step == 5 or rng.random() < 0.08
    item["follow_up"] = {"meldcode_step": step, "reported_to": ["veiligThuis"] if reported else [],
                         "reported_at": min(occurred_at + dt.timedelta(days=rng.randint(1, 20)), now)
                         if reported else None}
    if incident_errors(item, now):
        raise AssertionError(f"demo incident breaks the rules: {incident_errors(item, now)}")
    return item


def _seed_incidents(session: Session, institutions: list[Institution], keys: IdentityKeys, today: dt.date) -> int:
    """Two years of signals for the demo's statistics; one location is a clear hotspot."""
    if session.scalar(select(Incident.id).limit(1)) is not None:
        return 0
    rng = random.Random(14)  # noqa: S311 - demo data, reproducible on purpose
    now = dt.datetime.combine(today, dt.time(0), dt.UTC)  # midnight: never ahead of the real clock
    serial = 0
    for institution in institutions:
        caller = Caller(uuid.uuid4(), Role.INSTITUTION, institution.id, ())
        items = []
        for location in session.scalars(select(Location).where(Location.institution_id == institution.id)):
            places = location.capacities[-1].places
            rate = 0.22 * places * (3.5 if location.name == HOTSPOT else 1.0)
            residents = [f"DEMO-{location.postcode4}-{n}" for n in range(places * 2)]
            for month in range(24):
                for _ in range(int(rng.gauss(rate, rate ** 0.5 / 2) + 0.5)):
                    occurred_at = now - dt.timedelta(days=30 * month + rng.randint(1, 29), hours=rng.randint(0, 23))
                    serial += 1
                    items.append(_demo_incident(rng, location, occurred_at, serial, residents, now))
        for start in range(0, len(items), 500):
            record_incidents(session, caller, items[start:start + 500], keys, batch=True)
    return serial


# One resident's story at the hotspot, for the follow-up queue and an attestation worth showing (README, "From
# signal to report"): (reference, days ago, kind, exploitation type, indicators, extra values).
STORY_RESIDENT = "CL-2041"
STORY = [
    ("STORY-1", 75, "recruitmentAttempt", "sexual", ["onlineGrooming", "offeredMoneyOrGifts"],
     {"follow_up": {"meldcode_step": 1}}),
    ("STORY-2", 40, "absence", "sexual", ["inHotelsOrOthersHomes", "didNotReturnFromLeave"],
     {"absence": {"ended_at": 20, "whereabouts_known": False, "risk_level": "red", "reported_missing_to_police": True},
      "follow_up": {"meldcode_step": 4, "reported_to": ["veiligThuis"], "reported_at": 3}}),
    ("STORY-3", 12, "suspiciousVisitor", "sexual", ["pickedUpByVehicle", "vehicleSeenRepeatedly"],
     {"visitor": {"estimated_age_band": "23plus", "relation_claimed": "friend"}, "follow_up": {"meldcode_step": 2}}),
    ("STORY-4", 11.5, "suspiciousVisitor", "sexual", ["pickedUpByVehicle"],
     {"visitor": {"estimated_age_band": "23plus", "relation_claimed": "unknown"}}),
    ("STORY-5", 1.25, "absence", "sexual", ["awayWithoutPermission"],
     {"absence": {"ended_at": None, "whereabouts_known": False, "risk_level": "red",
                  "reported_missing_to_police": False}}),
]


def _story_item(location: Location, now: dt.datetime, reference: str, days_ago: float, kind: str, exploitation: str,
                indicators: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    occurred_at = now - dt.timedelta(days=days_ago)
    item = {"client_reference": reference, "location_id": location.id, "kind": kind,
            "exploitation_type": exploitation, "occurred_at": occurred_at, "resident_ref": STORY_RESIDENT,
            "resident_age_band": "16to17", "indicators": indicators, **extra}
    if item.get("absence") and item["absence"]["ended_at"] is not None:  # hours after it began
        item["absence"] = {**item["absence"], "ended_at": occurred_at + dt.timedelta(hours=item["absence"]["ended_at"])}
    follow_up = item.get("follow_up") or {}
    if follow_up.get("reported_at") is not None:  # days after the signal
        item["follow_up"] = {**follow_up, "reported_at": occurred_at + dt.timedelta(days=follow_up["reported_at"])}
    if incident_errors(item, now):
        raise AssertionError(f"demo story breaks the rules: {incident_errors(item, now)}")
    return item


def _seed_story(session: Session, institution: Institution, keys: IdentityKeys, chain_keys: ChainKeys | None,
                client: ApiClient) -> None:
    """Record the story as its institution's client did, each create with its access event (so an attestation
    shows its place in the hash chain), then a correction and the retraction of a duplicate."""
    if session.scalar(select(Incident.id).where(Incident.client_reference == "STORY-1")) is not None:
        return
    caller = Caller(client.id, Role.INSTITUTION, institution.id, ())
    location = session.scalars(select(Location).where(Location.institution_id == institution.id,
                                                      Location.name == HOTSPOT)).one()
    now = clock.now()
    recorded = []
    for spec in STORY:
        [incident] = record_incidents(session, caller, [_story_item(location, now, *spec)], keys)
        recorded.append(incident)
        if chain_keys is not None:
            append_event(session, chain_keys, event_type=EventType.CREATE, route="POST /v1/incidents", outcome=201,
                         caller=caller, municipality_code=GRONINGEN, records=[str(incident.id)])
    correct_incident(session, caller, recorded[0].id, {"follow_up": {"meldcode_step": 3},
                                                      "reason": "Gesprek met de jongere gevoerd."}, keys,
                     if_match=str(recorded[0].version))
    retract_incident(session, caller, recorded[3].id, "Dubbel ingevoerd.")


def seed_demo(session: Session, keys: IdentityKeys, today: dt.date | None = None,
              chain_keys: ChainKeys | None = None) -> dict[str, tuple[str, str]]:
    """Create what is missing (idempotent) and give every demo client a fresh secret: role -> (id, secret).
    With the access log's `chain_keys`, the story's creates are logged as the API would have logged them."""
    institutions = [_institution(session, *spec) for spec in INSTITUTIONS]
    _seed_incidents(session, institutions, keys, today or clock.today())
    credentials = {}
    for role, name in DEMO_CLIENTS.items():
        client = session.scalar(select(ApiClient).where(ApiClient.name == name, ApiClient.active.is_(True)))
        if client is None:
            client, secret = auth.create_client(
                session, name=name, role=role,
                institution_id=institutions[0].id if role is Role.INSTITUTION else None,
                municipality_codes=[GRONINGEN] if role in (Role.ANALYST, Role.AUDITOR) else [])
        else:
            client, secret = auth.rotate_secret(session, client.id)
        credentials[role.value] = (str(client.id), secret)
        if role is Role.INSTITUTION:
            _seed_story(session, institutions[0], keys, chain_keys, client)
    return credentials


# Sets TOKEN in the reader's shell without jq: python3 is there wherever the service runs.
TOKEN_LINE = ("TOKEN=$(curl -s -u '{client_id}:{secret}' -d grant_type=client_credentials {base}/v1/oauth/token"
              " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")


def last_full_quarter(today: dt.date) -> str:
    """The newest quarter that has ended (the demo data covers the two years before today)."""
    quarter = (today.month - 1) // 3  # the current one, 0-3: the last full one is the one before
    return f"{today.year - 1}-Q4" if quarter == 0 else f"{today.year}-Q{quarter}"


def quick_start(credentials: dict[str, tuple[str, str]], port: int, today: dt.date) -> list[str]:
    """What `risk-register demo` prints: the clients, a line per role that sets TOKEN, a first statistics request
    for the analyst and where the docs are, all for the server at 127.0.0.1:`port`."""
    base = f"http://127.0.0.1:{port}"
    lines = ["Demo clients (secrets are new on every `risk-register demo`):"]
    lines += [f"  {role:<12} clientId={client_id}  clientSecret={secret}"
              for role, (client_id, secret) in credentials.items()]
    lines += ["", "Get a token as one of them (each line sets TOKEN in your shell):"]
    lines += [f"  {TOKEN_LINE.format(client_id=client_id, secret=secret, base=base)}  # {role}"
              for role, (client_id, secret) in credentials.items()]
    lines += ["", f"Then, as the analyst, the hotspots of {last_full_quarter(today)} by location:",
              f"  curl -s -H \"Authorization: Bearer $TOKEN\" "
              f"'{base}/v1/stats/hotspots?period={last_full_quarter(today)}&groupBy=location'",
              "", f"Docs: {base}/v1/docs"]
    analyst_id, analyst_secret = credentials[Role.ANALYST.value]
    lines += [f"Dashboard: {base}/dashboard/  (sign in as the analyst: client id {analyst_id}, "
              f"secret {analyst_secret}; pick {last_full_quarter(today)})"]
    return lines
