"""The hotspots' funnel plot as SVG: well-formed, the same units and limits as the JSON, suppressed units absent,
labels by Accept-Language, the same bytes for the same data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from service.auth.models import Role
from service.stats.plot import LABELS, funnel_plot
from tests.factories import make_institution, make_location
from tests.stats.factories import seed

pytestmark = pytest.mark.clock("2026-11-20")

PLOT = "/v1/stats/hotspots/funnel-plot"
HOTSPOTS = "/v1/stats/hotspots"
SVG_NS = "{http://www.w3.org/2000/svg}"
PARAMS = {"period": "2026-Q2", "groupBy": "location"}


@pytest.fixture
def analyst(token_for) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.ANALYST)


@pytest.fixture
def units(session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    institution = make_institution(session)
    large = make_location(session, institution, name="Huis <De Linde> & zo")
    medium = make_location(session, institution)
    small = make_location(session, make_institution(session), name="Kamer Klein")
    seed(session, large, 40)
    seed(session, medium, 12)
    seed(session, small, 4)
    return {"large": large, "medium": medium, "small": small}


def parsed(svg: bytes | str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, which the test is about


def plot(client, headers, **extra_headers: str):  # type: ignore[no-untyped-def]
    response = client.get(PLOT, query_string=PARAMS, headers=headers | extra_headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/svg+xml"
    return response


def test_the_plot_draws_each_released_unit_at_its_json_figures_and_both_limit_curves(client, analyst, units):
    body = client.get(HOTSPOTS, query_string=PARAMS, headers=analyst).get_json()
    svg = parsed(plot(client, analyst).get_data())

    assert svg.tag == f"{SVG_NS}svg"
    points = svg.findall(f".//{SVG_NS}circle")
    released = [row for row in body["units"] if row["limits"] is not None]
    assert {p.get("data-unit-id") for p in points} == {row["unit"]["id"] for row in released} == {
        str(units["large"].id), str(units["medium"].id)}
    assert {p.get("data-band") for p in points} == {row["funnelBand"] for row in released}
    assert [p.find(f"{SVG_NS}title").text.split(":")[0] for p in points] == [row["unit"]["name"] for row in released]
    curves = {c.get("class") for c in svg.findall(f".//{SVG_NS}polyline")}
    assert curves == {"limit limit-lower95", "limit limit-upper95", "limit limit-lower998", "limit limit-upper998"}
    assert len(svg.findall(f".//{SVG_NS}line[@class='reference']")) == 1
    # Higher rates are drawn higher: the order of the points' heights is the order of the JSON's rates.
    height = {p.get("data-unit-id"): float(p.get("cy")) for p in points}
    rate = {row["unit"]["id"]: row["ratePer10Places"] for row in released}
    assert sorted(height, key=lambda k: -height[k]) == sorted(rate, key=lambda k: rate[k])


def test_a_suppressed_unit_is_absent_by_id_and_by_name(client, analyst, units):
    text = plot(client, analyst).get_data(as_text=True)

    assert str(units["small"].id) not in text
    assert "Kamer Klein" not in text
    assert "Huis &lt;De Linde&gt; &amp; zo" in text  # names are escaped, never markup
    assert "<script" not in text and "style" not in text


def test_labels_are_dutch_by_default_and_english_when_asked(client, analyst, units):
    dutch = plot(client, analyst)
    english = plot(client, analyst, **{"Accept-Language": "en-GB,en;q=0.9"})
    also_dutch = plot(client, analyst, **{"Accept-Language": "nl-NL, en;q=0.5"})

    assert dutch.headers["Content-Language"] == also_dutch.headers["Content-Language"] == "nl"
    assert english.headers["Content-Language"] == "en"
    for response, language in ((dutch, "nl"), (english, "en")):
        texts = {t.text for t in parsed(response.get_data()).iter(f"{SVG_NS}text")}
        assert {LABELS[language]["x"], LABELS[language]["y"], LABELS[language]["limits998"]} <= texts
    assert "Plaatsmaanden" in dutch.get_data(as_text=True) and "Place-months" in english.get_data(as_text=True)


def test_the_same_data_draws_the_same_bytes(client, analyst, units):
    assert plot(client, analyst).get_data() == plot(client, analyst).get_data()


def test_no_units_with_limits_draw_an_empty_plot_saying_so(client, analyst):
    svg = plot(client, analyst).get_data(as_text=True)

    assert "<circle" not in svg
    assert LABELS["nl"]["empty"] in svg


def test_only_svg_is_offered_and_only_to_analysts(client, analyst, token_for):
    refused = client.get(PLOT, query_string=PARAMS, headers=analyst | {"Accept": "application/json"})
    auditor = client.get(PLOT, query_string=PARAMS, headers=token_for(Role.AUDITOR))

    assert refused.status_code == 406 and refused.mimetype == "application/problem+json"
    assert auditor.status_code == 403


def test_the_writer_escapes_every_text_it_is_given():
    body = {"period": "2026-Q2", "units": [
        {"unit": {"id": '"><script>x</script>', "name": "<b>&"}, "places": 10.0, "ratePer10Places": 5.0,
         "funnelBand": "within", "limits": {"lower95": 1, "upper95": 9, "lower998": 0.5, "upper998": 12}}],
        "reference": {"ratePer10Places": 5.0, "funnelCurve": [
            {"places": 10.0, "expected": 5.0, "lower95": 1, "upper95": 9, "lower998": 0.5, "upper998": 12}]}}

    svg = funnel_plot(body, "en")

    parsed(svg)  # well-formed
    assert "<script" not in svg and "<b>" not in svg
