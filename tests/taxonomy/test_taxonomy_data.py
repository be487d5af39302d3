"""Domain tests for the shipped taxonomy data file and its loader."""

from pathlib import Path

import pytest
import yaml

from service.taxonomy.service import Taxonomy, load_taxonomy, parse

DATA_FILE = Path(__file__).parents[2] / "service" / "taxonomy" / "taxonomy.yaml"
LISTS = [
    "kinds",
    "exploitationTypes",
    "ageBands",
    "indicators",
    "meldcodeSteps",
    "reportedTo",
    "riskLevels",
    "relationsClaimed",
]
VISITOR = {
    "unknownAdultWaiting",
    "pickedUpByVehicle",
    "vehicleSeenRepeatedly",
    "visitorOlderOrNotListed",
    "visitorRefusesId",
    "deliveriesForResident",
    "staffApproached",
}
ABSENCE = {
    "lateReturn",
    "awayWithoutPermission",
    "missingReportedToPolice",
    "didNotReturnFromLeave",
    "abscondedFromSecureCare",
    "returnedInjuredOrWithNewItems",
}


@pytest.fixture
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


def test_version_and_codes_match_the_incident_contract(taxonomy):
    assert taxonomy.version == "2026.1"
    assert list(taxonomy.kinds) == ["recruitmentAttempt", "suspiciousVisitor", "absence"]
    assert list(taxonomy.exploitation_types) == ["sexual", "criminal", "labour", "other", "unknown"]
    assert list(taxonomy.age_bands) == ["under12", "12to15", "16to17", "18to22", "23plus", "unknown"]
    assert list(taxonomy.meldcode_steps) == [1, 2, 3, 4, 5]
    assert list(taxonomy.reported_to) == ["police", "zorgEnVeiligheidshuis", "veiligThuis", "coMensha", "igj"]
    assert list(taxonomy.risk_levels) == ["green", "orange", "red"]
    assert set(taxonomy.relations_claimed) == {
        "family",
        "friend",
        "partner",
        "acquaintance",
        "unknown",
        "other",
    }


@pytest.mark.parametrize("key", LISTS)
def test_every_entry_has_two_real_labels(raw, key):
    for entry in raw[key]:
        for label in ("labelEn", "labelNl"):
            assert isinstance(entry[label], str) and entry[label].strip(), (key, entry["code"], label)
            assert entry[label] != str(entry["code"]), (key, entry["code"], label)


@pytest.mark.parametrize("key", LISTS)
def test_codes_are_unique_per_list(raw, key):
    codes = [entry["code"] for entry in raw[key]]
    assert len(codes) == len(set(codes)), key


def test_every_indicator_applies_only_to_known_kinds(taxonomy):
    for indicator in taxonomy.indicators.values():
        assert indicator.kinds, indicator.code
        assert indicator.kinds <= set(taxonomy.kinds), indicator.code


def test_visitor_indicators_apply_to_visitors_and_absence_ones_do_not(taxonomy):
    by_group = {
        g: {c for c, i in taxonomy.indicators.items() if i.group == g} for g in ("visitor", "absence")
    }
    assert by_group == {"visitor": VISITOR, "absence": ABSENCE}
    visitor = taxonomy.indicators_for("suspiciousVisitor")
    assert visitor >= VISITOR
    assert not visitor & ABSENCE
    assert taxonomy.indicators_for("absence") >= ABSENCE
    assert not taxonomy.indicators_for("absence") & VISITOR


def test_invalid_indicators_returns_exactly_the_wrong_codes_in_order(taxonomy):
    codes = ["lateReturn", "multiplePhones", "noSuchCode", "unknownAdultWaiting", "suddenDebts"]
    assert taxonomy.invalid_indicators("recruitmentAttempt", codes) == [
        "lateReturn",
        "noSuchCode",
        "unknownAdultWaiting",
    ]
    assert taxonomy.invalid_indicators("absence", ["lateReturn", "multiplePhones"]) == []
    assert taxonomy.invalid_indicators("noSuchKind", ["lateReturn"]) == ["lateReturn"]


def test_as_document_round_trips_the_lists(taxonomy, raw):
    doc = taxonomy.as_document()
    assert list(doc) == ["version", *LISTS]
    assert doc["version"] == raw["version"]
    for key in LISTS:
        assert [e["code"] for e in doc[key]] == [e["code"] for e in raw[key]], key
    first = doc["indicators"][0]
    assert set(first) == {"code", "labelEn", "labelNl", "group", "kinds"}
    assert first["kinds"] == sorted(first["kinds"])
    assert parse(yaml.safe_dump(doc)).as_document() == doc


def test_load_taxonomy_is_cached(taxonomy):
    assert load_taxonomy() is taxonomy


def _break(raw: dict, tmp_path: Path, mutate) -> str:
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["kinds"].append(dict(d["kinds"][0])), "duplicate code 'recruitmentAttempt'"),
        (lambda d: d["indicators"][0]["kinds"].append("phoneCall"), "unknown kinds ['phoneCall']"),
        (lambda d: d["ageBands"][1].update(labelNl=" "), "empty labelNl"),
        (lambda d: d["riskLevels"][0].pop("labelEn"), "empty labelEn"),
        (lambda d: d["indicators"][0].update(group="misc"), "unknown group 'misc'"),
        (lambda d: d["meldcodeSteps"][0].update(code="1"), "non-int code"),
        (lambda d: d.pop("reportedTo"), "'reportedTo' must be a non-empty list"),
        (lambda d: d.update(version=""), "'version' must be a non-empty string"),
    ],
)
def test_parse_refuses_a_broken_document(raw, tmp_path, mutate, message):
    text = _break(raw, tmp_path, mutate)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text)
