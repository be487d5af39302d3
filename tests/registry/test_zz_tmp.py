from service.auth.models import Role
from tests.factories import make_institution

def test_x(client, token_for, session):
    inst = make_institution(session)
    for caps in ([{"validFrom": "2024-13-01", "places": 3}], [{"places": 3}], [{"validFrom": "2024-01-01", "places": -1}], [{"validFrom": "2024-01-01", "places": 1}, {"validFrom": "x", "places": 1}]):
        r = client.post(f"/v1/institutions/{inst.id}/locations", json={"name": "L", "postcode4": "9712", "municipalityCode": "GM0014", "setting": "open", "capacities": caps}, headers=token_for(Role.ADMIN))
        print(caps, r.status_code, r.mimetype, r.json)
    assert 0
