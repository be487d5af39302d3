"""What gets installed: the lock files pin what pyproject.toml allows, and a built wheel holds the whole service
(the image installs the wheel, not the source tree: migrations, docs assets and data files must be in it)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, set[str]]:
    """name -> the versions pinned (a universal lock may pin two, one per Python version range)."""
    text = (ROOT / lock).read_text()
    assert "--generate-hashes" in text.splitlines()[1]
    found = PIN.findall(text)
    hashed = re.findall(r"^[A-Za-z0-9._-]+==[^\n]*\\\n\s+--hash=sha256:", text, re.MULTILINE)
    assert len(hashed) == len(found), f"{lock}: every pin carries its hashes"
    pins: dict[str, set[str]] = {}
    for name, version in found:
        pins.setdefault(canonicalize_name(name), set()).add(version)
    return pins


def _assert_pinned_within_ranges(pins: dict[str, set[str]], requirements: list[str]) -> None:
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in the lock; run `make lock`"
        outside = {v for v in pins[name] if not requirement.specifier.contains(v, prereleases=True)}
        assert not outside, f"{name}=={outside} is outside {requirement.specifier}; run `make lock`"


def test_the_runtime_lock_pins_every_dependency_within_its_range():
    _assert_pinned_within_ranges(_pins("requirements.lock"), PYPROJECT["project"]["dependencies"])


def test_the_dev_lock_pins_the_dev_tools_and_the_runtime_at_the_same_versions():
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    _assert_pinned_within_ranges(dev, PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert {name: dev.get(name) for name in runtime} == runtime, "CI tests what the image runs"


def test_the_licence_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    assert PYPROJECT["project"]["license"] == "EUPL-1.2"
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]


def test_a_built_wheel_holds_every_file_of_the_service(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("service", "migrations"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))

    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",  # noqa: S603
                            "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True,
                           text=True)
    assert "Warning" not in build.stdout + build.stderr, "the build warns: " + build.stderr

    [wheel] = (tmp_path / "wheel").glob("risk_register-*.whl")
    packed = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("service/")}
    expected = {str(path.relative_to(source)) for path in (source / "service").rglob("*") if path.is_file()} | {
        f"service/{path.relative_to(source)}" for path in (source / "migrations").rglob("*") if path.is_file()}
    assert packed == expected
    assert {"service/migrations/env.py", "service/migrations/script.py.mako", "service/docs/page.html",
            "service/docs/assets/swagger-ui/swagger-ui-bundle.js", "service/stats/ptable.json",
            "service/dashboard/page.html", "service/dashboard/assets/dashboard.js",
            "service/registry/municipalities.yaml"} <= packed


def test_every_package_of_the_service_is_listed_for_the_build():
    """Every folder Python could import, data folders included (setuptools warns of any it was not told about)."""
    found = {".".join(path.relative_to(ROOT).parts) for path in [ROOT / "service", *(ROOT / "service").rglob("*")]
             if path.is_dir() and path.name.isidentifier() and path.name != "__pycache__"}
    assert found | {"service.migrations", "service.migrations.versions"} == set(
        PYPROJECT["tool"]["setuptools"]["packages"])
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"service.migrations": "migrations"}
