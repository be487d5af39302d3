"""What a serving worker loads (at most 150 MB resident per gunicorn worker).

Migration tooling and test tooling stay out of a worker: alembic alone costs it about 10 MiB, so /readyz reads the
newest revision from the migration scripts itself. That reading must agree with alembic's on any revision graph.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from service import operations
from service.operations import alembic_config, newest_revision, schema_head

ROOT = Path(__file__).resolve().parent.parent
# scipy.stats and scipy.optimize: about 23 MiB each; the statistics need scipy.special only.
# matplotlib: the funnel plot is written by hand (service/stats/plot.py).
NOT_IN_A_WORKER = ("alembic", "mako", "pytest", "hypothesis", "schemathesis", "scipy.stats", "scipy.optimize",
                   "matplotlib")
MAX_WORKER_MIB = 150


def test_the_schema_head_is_alembics_head() -> None:
    assert schema_head() == newest_revision() is not None


def _migration(folder: Path, name: str, revision: str, down: object, annotated: bool) -> None:
    hint = ": str" if annotated else ""
    down_hint = ": str | tuple[str, ...] | None" if annotated else ""
    (folder / name).write_text(textwrap.dedent(f'''\
        """{name}"""
        import sqlalchemy as sa
        revision{hint} = {revision!r}
        down_revision{down_hint} = {down!r}
        branch_labels = None
        depends_on = None

        def upgrade() -> None:
            pass
        '''))


@pytest.mark.parametrize("graph", [
    [("a1", None), ("b2", "a1"), ("c3", "b2")],
    [("a1", None), ("b2", "a1"), ("c3", "a1"), ("m4", ("b2", "c3"))],  # two branches merged
    [("z9", None), ("y8", "z9")],  # ids that sort the other way round
])
def test_schema_head_agrees_with_alembic_on_any_graph(
        graph: list[tuple[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "script.py.mako").write_text("")
    for n, (revision, down) in enumerate(graph):
        _migration(tmp_path / "versions", f"{n:04d}_{revision}.py", revision, down, annotated=n % 2 == 1)
    monkeypatch.setattr(operations, "MIGRATIONS", tmp_path)
    schema_head.cache_clear()
    try:
        assert schema_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        schema_head.cache_clear()


def test_two_heads_are_refused_as_alembic_refuses_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "versions").mkdir()
    for n, (revision, down) in enumerate([("a1", None), ("b2", "a1"), ("c3", "a1")]):
        _migration(tmp_path / "versions", f"{n:04d}_{revision}.py", revision, down, annotated=False)
    monkeypatch.setattr(operations, "MIGRATIONS", tmp_path)
    schema_head.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="2 heads"):
            schema_head()
    finally:
        schema_head.cache_clear()


@pytest.mark.slow
def test_a_worker_that_answered_readyz_has_loaded_no_migration_or_test_tooling(tmp_path: Path) -> None:
    """In a fresh interpreter, as gunicorn's worker would: the app, a migrated database, one /readyz, the
    statistics' arithmetic."""
    url = f"sqlite:///{tmp_path / 'ready.sqlite3'}"
    from alembic import command

    command.upgrade(alembic_config(url), "head")
    probe = textwrap.dedent(f"""\
        import json, sys
        from service import create_app
        app = create_app({{"DATABASE_URL": {url!r}, "APP_ENV": "development",
                          "INSTANCE_PATH": {str(tmp_path / "instance")!r}}})
        response = app.test_client().get("/readyz")
        from service.stats import funnel  # what a hotspots request computes, in case it imported more lazily
        funnel.funnel_bands([3, 40], [2.0, 20.0], 1.5), funnel.rate_change_pvalues([3, 9], [5, 1], [0.5, 0.4])
        funnel.eb_estimates([3, 4], [2.0, 3.0]), funnel.exact_poisson_interval(3, 0.95)
        from service.stats import plot  # and the funnel plot a dashboard asks for
        plot.funnel_plot({{"period": "2026-Q3", "units": [], "reference": {{"ratePer10Places": None,
                                                                          "funnelCurve": []}}}})
        # The peak resident set of this process (getrusage's maxrss would carry over pytest's, the forking parent).
        peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        print(json.dumps({{"status": response.status_code, "modules": sorted(sys.modules), "peakRssKiB": peak}}))
        """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT,  # noqa: S603 - our own probe, this interpreter
                          capture_output=True, text=True, timeout=120,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["status"] == 200
    assert result["peakRssKiB"] / 1024 <= MAX_WORKER_MIB
    print(f"worker peak RSS: {result['peakRssKiB'] / 1024:.1f} MiB")
    loaded = [m for m in result["modules"] if any(m == n or m.startswith(f"{n}.") for n in NOT_IN_A_WORKER)]
    assert loaded == []
