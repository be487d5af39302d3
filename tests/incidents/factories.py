"""Wire bodies of incidents: a valid body per kind, every field overridable (OMIT removes one)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from service import clock
from tests.factories import letters

OMIT: Any = object()
_serial = itertools.count(1)

INDICATORS = {
    "recruitmentAttempt": ["approachedAtEntrance", "offeredMoneyOrGifts"],
    "suspiciousVisitor": ["unknownAdultWaiting", "vehicleSeenRepeatedly"],
    "absence": ["awayWithoutPermission"],
}


def wire_time(value: dt.datetime) -> str:
    """An aware datetime as the wire carries it, to the second."""
    return value.replace(microsecond=0).isoformat()


def recent(hours: float = 3) -> dt.datetime:
    """An aware UTC datetime `hours` ago, to the second."""
    return (clock.now() - dt.timedelta(hours=hours)).replace(microsecond=0)


def incident_body(location_id: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
    """A valid body for POST /v1/incidents. `kind` picks the block that goes with it; OMIT drops a field."""
    kind = overrides.get("kind", "recruitmentAttempt")
    occurred = recent(3)
    body: dict[str, Any] = {
        "clientReference": f"SIG-{next(_serial):06d}-{letters(6)}",
        "locationId": str(location_id),
        "kind": kind,
        "exploitationType": "criminal",
        "occurredAt": wire_time(occurred),
        "residentRef": "CL-0042",
        "residentAgeBand": "16to17",
        "indicators": list(INDICATORS.get(kind, [])),
        "note": "Stond lang bij het hek te wachten en sprak twee bewoners aan.",
        "followUp": {"meldcodeStep": 2, "reportedTo": ["veiligThuis"], "reportedAt": wire_time(recent(1))},
    }
    if kind == "absence":
        body["absence"] = {"endedAt": wire_time(recent(2)), "whereaboutsKnown": True, "riskLevel": "orange",
                           "reportedMissingToPolice": False}
    if kind == "suspiciousVisitor":
        body["visitor"] = {"estimatedAgeBand": "23plus", "vehiclePlate": "12-ABC-3", "phoneNumber": "06 12345678",
                           "relationClaimed": "friend"}
    for field, value in overrides.items():
        if value is OMIT:
            body.pop(field, None)
        else:
            body[field] = value
    return body
