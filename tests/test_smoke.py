from service.auth.models import Role


def test_admin_lists_institutions(client, token_for, session):
    from tests.factories import make_institution
    make_institution(session, name="A")
    r = client.get("/v1/institutions", headers=token_for(Role.ADMIN))
    assert r.status_code == 200, r.json
    assert [i["name"] for i in r.json["items"]] == ["A"]
