"""The CBS municipality list that names statistics units: its source and year, and merged codes resolving."""

from __future__ import annotations

import re

from service.registry.service import municipality_list


def test_the_list_names_its_source_and_year_and_holds_only_cbs_codes():
    municipalities = municipality_list()

    assert "CBS" in municipalities.source and municipalities.source.count("https://") == 1
    assert municipalities.year >= 2026
    codes = [*municipalities.names, *municipalities.merged, *municipalities.merged.values()]
    assert all(re.fullmatch(r"GM[0-9]{4}", code) for code in codes)
    assert all(name and name.strip() == name for name in municipalities.names.values())


def test_a_municipality_is_named_officially_and_a_merged_code_by_the_municipality_it_joined():
    municipalities = municipality_list()

    assert municipalities.name("GM0014") == "Groningen"
    assert municipalities.name("GM0017") == "Groningen"  # Haren, part of Groningen since 2019
    assert municipalities.name("GM0003") == "Eemsdelta"  # Appingedam, since 2021
    assert municipalities.name("GM0518") == "'s-Gravenhage"


def test_every_merged_code_resolves_to_a_current_municipality_and_no_current_code_is_merged():
    municipalities = municipality_list()

    assert set(municipalities.merged.values()) <= set(municipalities.names)
    assert not set(municipalities.merged) & set(municipalities.names)


def test_an_unknown_code_is_shown_as_itself():
    assert municipality_list().name("GM9999") == "GM9999"
