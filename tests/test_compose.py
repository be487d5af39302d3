"""docker-compose.yml runs as written. No container engine runs where these tests do, so they check the file against
the Compose Specification's schema (tests/compose/SOURCE.md), hold it to .env.example and to what the service reads,
and run its commands in its order against the local PostgreSQL and Redis: the database's init script, the migration
as the owner, gunicorn as the service's role (until /readyz answers), the README's bootstrap command and the
scheduler's jobs once. Without PostgreSQL the last test skips, except under CI=true."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import jsonschema
import pytest
import redis
import yaml
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from service.gunicorn import graceful_timeout
from service.operations import newest_revision
from tests.conftest import postgres_server_url, unavailable
from tests.serving import BIN, free_port, served

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCHEMA = json.loads((ROOT / "tests" / "compose" / "compose-spec.json").read_text())
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
SERVICES = COMPOSE["services"]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, $NAME and $$ (a literal $)
VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Set for the service by the image (INSTANCE_PATH) or by `risk-register serve` (PROMETHEUS_MULTIPROC_DIR); refused
# in production (CLOCK_START): the compose file need not pass them on.
NOT_FROM_COMPOSE = {"INSTANCE_PATH", "PROMETHEUS_MULTIPROC_DIR", "CLOCK_START"}


class MissingVariable(Exception):
    pass


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation of one string."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1) or match.group(4), match.group(2), match.group(3)
        value = variables.get(name)
        unset = value is None or (operator in (":-", ":?") and value == "")
        if operator in (":-", "-") and unset:
            return argument
        if operator in (":?", "?") and unset:
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        return value or ""

    return VARIABLE.sub(substitute, value)


def environment(service: str, variables: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as compose gives it: values interpolated, keys without a value passed on if set."""
    resolved = {}
    for key, value in SERVICES[service].get("environment", {}).items():
        if value is None:
            if variables.get(key):
                resolved[key] = variables[key]
        else:
            resolved[key] = interpolate(str(value), variables)
    return resolved


def command(service: str, variables: Mapping[str, str]) -> list[str]:
    return [interpolate(part, variables) for part in SERVICES[service]["command"]]


def env_example_names() -> set[str]:
    """Every NAME in .env.example, set (`NAME=`) or shown with its default (`# NAME=`)."""
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.MULTILINE))


def env_example_required() -> dict[str, str]:
    """The variables a copy of .env.example sets, as copied (the secrets, empty)."""
    return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", ENV_EXAMPLE, re.MULTILINE))


# What the service reads


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in ("env", "environ")) or (
        isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
        and node.value.id == "os")


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def variables_the_service_reads() -> set[str]:
    """Names read from the environment anywhere in service/: environ.get("X"), environ["X"], "X" in environ, and
    helpers called as helper(environ, "X") (with the suffixes they add, as f"{name}_FILE")."""
    trees = [ast.parse(path.read_text()) for path in (ROOT / "service").rglob("*.py")]
    suffixes: dict[str, set[str]] = {}
    for tree in trees:
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.JoinedStr) and isinstance(node.values[-1], ast.Constant):
                    suffixes.setdefault(function.name, set()).add(str(node.values[-1].value))
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            found: list[str | None] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and _is_environ(node.func.value) and node.args:
                found.append(_constant(node.args[0]))
            elif isinstance(node, ast.Subscript) and _is_environ(node.value):
                found.append(_constant(node.slice))
            elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
                found.append(_constant(node.left))
            elif isinstance(node, ast.Call) and len(node.args) >= 2 and _is_environ(node.args[0]):
                name = _constant(node.args[1])
                helper = node.func.id if isinstance(node.func, ast.Name) else ""
                found += [name, *(f"{name}{suffix}" for suffix in suffixes.get(helper, ()) if name)]
            names |= {name for name in found if name and re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}
    return names


def test_the_scan_finds_what_the_service_reads():
    assert {"DATABASE_URL", "TOKEN_SECRET", "TOKEN_SECRET_FILE", "PSEUDONYM_MASTER_KEY_FILE", "DISCLOSURE_K",
            "DISCLOSURE_DOMINANCE_SHARE", "LOG_FORMAT", "CLOCK_START", "PROMETHEUS_MULTIPROC_DIR",
            "INSTANCE_PATH"} <= variables_the_service_reads()


def test_every_variable_the_service_reads_is_in_env_example_and_reaches_the_service():
    read = variables_the_service_reads()
    assert read - env_example_names() == set()
    for service in ("migrate", "app", "scheduler"):
        assert read - NOT_FROM_COMPOSE - set(SERVICES[service]["environment"]) == set(), service


def test_every_variable_the_compose_file_names_is_in_env_example():
    named = {m.group(1) or m.group(4) for m in VARIABLE.finditer((ROOT / "docker-compose.yml").read_text())}
    assert named - {None} - env_example_names() == set()


# The file itself


def test_the_compose_file_follows_the_compose_specification():
    validator = jsonschema.Draft7Validator(SCHEMA)
    assert [error.message for error in validator.iter_errors(COMPOSE)] == []
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["app"]["restrat"] = "always"
    assert list(validator.iter_errors(broken)), "the schema must catch a misspelt key"


def test_a_fresh_copy_of_env_example_stops_compose_with_the_names_to_set():
    variables = env_example_required()
    assert variables == {"TOKEN_SECRET": "", "PSEUDONYM_MASTER_KEY": "", "POSTGRES_PASSWORD": "",
                         "APP_DB_PASSWORD": ""}
    refused = {}
    for service in SERVICES:
        for value in SERVICES[service].get("environment", {}).values():
            try:
                interpolate(str(value or ""), variables)
            except MissingVariable as missing:
                refused[str(missing).split()[2]] = str(missing)
    assert sorted(refused) == sorted(variables)
    assert all(" in .env (" in message for message in refused.values()), refused


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_long_running_services_restart_and_stop_after_gunicorns_graceful_timeout():
    assert {name: service.get("restart") for name, service in SERVICES.items()} == {
        "db": "unless-stopped", "redis": "unless-stopped", "migrate": "no", "app": "unless-stopped",
        "scheduler": "unless-stopped"}
    assert _seconds(SERVICES["app"]["stop_grace_period"]) > graceful_timeout
    assert _seconds(SERVICES["scheduler"]["stop_grace_period"]) > graceful_timeout
    assert "/readyz" in " ".join(SERVICES["app"]["healthcheck"]["test"])
    assert SERVICES["migrate"]["healthcheck"] == SERVICES["scheduler"]["healthcheck"] == {"disable": True}


def test_the_service_gets_redis_and_never_the_owners_password():
    for service in ("app", "scheduler"):
        secrets_set = {"TOKEN_SECRET": "t", "PSEUDONYM_MASTER_KEY": "k", "POSTGRES_PASSWORD": "OWNER",
                       "APP_DB_PASSWORD": "APP"}
        settings = environment(service, secrets_set)
        assert settings["REDIS_URL"] == "redis://redis:6379/0"
        assert "OWNER" not in json.dumps(settings), service
        assert make_url(settings["DATABASE_URL"]).username == "register_app"
    assert SERVICES["app"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert SERVICES["scheduler"]["command"] == ["risk-register", "schedule"]


def test_the_image_installs_the_locked_wheel_and_checks_its_health():
    dockerfile = (ROOT / "Dockerfile").read_text()
    final = dockerfile.split("\nFROM ")[-1]
    assert "pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock" in final
    assert "pip install --no-cache-dir --no-deps /tmp/wheels/*.whl" in final
    assert " -e " not in dockerfile and "--editable" not in dockerfile
    assert "HEALTHCHECK" in final and "/readyz" in final
    lock = (ROOT / "requirements.lock").read_text().splitlines()[1]
    python = re.search(r"--python-version (\d+\.\d+)", lock).group(1)  # type: ignore[union-attr]
    assert f"FROM python:{python}-slim" in dockerfile
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert ignored[0] == "*", "the build context is an allowlist"
    assert {line[1:] for line in ignored if line.startswith("!")} == {"pyproject.toml", "README.md",
                                                                       "requirements.lock", "service/", "migrations/"}


# The stack, run as written


def _redis_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(count=1000))


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env={"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"} | dict(env),  # noqa: S603
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, f"{shlex.join(argv)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def scratch_stack() -> Iterator[dict[str, str]]:
    """Scratch owner and service roles and a database owned by the first: what the postgres image makes of
    POSTGRES_USER and POSTGRES_DB. Dropped afterwards, with whatever Redis keys the test left."""
    suffix = secrets.token_hex(4)
    variables = {"POSTGRES_USER": f"rr_owner_{suffix}", "POSTGRES_DB": f"rr_stack_{suffix}",
                 "APP_DB_USER": f"rr_app_{suffix}", "POSTGRES_PASSWORD": secrets.token_hex(16),
                 "APP_DB_PASSWORD": secrets.token_hex(16), "TOKEN_SECRET": secrets.token_hex(32),
                 "PSEUDONYM_MASTER_KEY": secrets.token_hex(32)}
    admin = create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    owner, database, password = variables["POSTGRES_USER"], variables["POSTGRES_DB"], variables["POSTGRES_PASSWORD"]
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{password}'"))
            connection.execute(text(f"CREATE DATABASE {database} OWNER {owner}"))
    except OperationalError as exc:
        unavailable(f"PostgreSQL at {admin.url.host} is unreachable: {type(exc.orig).__name__}")
    keyspace = redis.Redis.from_url(REDIS_URL)
    try:
        before = _redis_keys(keyspace)
    except redis.ConnectionError:
        unavailable(f"no Redis at {REDIS_URL}", "Redis")
    variables |= {"PG_HOST": admin.url.host or "127.0.0.1", "PG_PORT": str(admin.url.port or 5432)}
    try:
        yield variables
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS {variables["POSTGRES_DB"]} WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS {variables["APP_DB_USER"]}'))
            connection.execute(text(f'DROP ROLE IF EXISTS {variables["POSTGRES_USER"]}'))
        admin.dispose()
        left = _redis_keys(keyspace) - before
        if left:
            keyspace.delete(*left)


def _on_this_machine(settings: dict[str, str], stack: Mapping[str, str]) -> dict[str, str]:
    """Compose's service names are hosts in its network; here they are the local PostgreSQL and Redis."""
    if "DATABASE_URL" in settings:
        url = make_url(settings["DATABASE_URL"])
        assert url.host == "db"
        settings["DATABASE_URL"] = url.set(host=stack["PG_HOST"], port=int(stack["PG_PORT"])).render_as_string(
            hide_password=False)
    if "REDIS_URL" in settings:
        assert settings["REDIS_URL"].startswith("redis://redis:6379/")
        settings["REDIS_URL"] = REDIS_URL
    return settings


def _image_environment(folder: Path) -> dict[str, str]:
    """The final stage's ENV of the Dockerfile, with the instance folder in `folder`."""
    final = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    declared = " ".join(re.findall(r"^ENV ((?:.*\\\n)*.*)$", final, re.MULTILINE)).replace("\\\n", " ")
    return dict(pair.split("=", 1) for pair in declared.split()) | {"INSTANCE_PATH": str(folder)}


@pytest.mark.slow
def test_the_stack_runs_as_written(scratch_stack, tmp_path):
    stack = scratch_stack
    local = {"PGHOST": stack["PG_HOST"], "PGPORT": stack["PG_PORT"]}

    # db: the init scripts the compose file mounts, in order, with the db service's environment
    [mount] = [volume for volume in SERVICES["db"]["volumes"] if volume.endswith(":/docker-entrypoint-initdb.d:ro")]
    for script in sorted((ROOT / mount.split(":")[0]).glob("*.sh")):
        _run(["sh", str(script)], environment("db", stack) | local)

    # migrate: as the owner of the tables, then the grants to the service's role
    image = _image_environment(tmp_path / "instance")
    migrate = image | _on_this_machine(environment("migrate", stack), stack)
    assert make_url(migrate["DATABASE_URL"]).username == stack["POSTGRES_USER"]
    _run(command("migrate", stack), migrate)

    # app: gunicorn as the service's role, until /readyz answers
    app = image | _on_this_machine(environment("app", stack), stack)
    assert make_url(app["DATABASE_URL"]).username == stack["APP_DB_USER"]
    port = free_port()
    argv = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in command("app", stack)]
    with served(argv, app, tmp_path, port) as server:
        assert server.request("GET", "/readyz") == (200, {"status": "ready", "schemaRevision": newest_revision()})
        # README: the first admin client, then a token from the running service (rate limited in Redis)
        created = _run(["risk-register", "clients", "create", "--role", "admin", "--name", "ops", "--json"], app)
        admin = json.loads(created.stdout)
        status, token = server.request("POST", "/v1/oauth/token", form={"grant_type": "client_credentials",
                                       "client_id": admin["clientId"], "client_secret": admin["clientSecret"]})
        assert status == 200, token
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        listed = server.request("GET", "/v1/institutions", headers=bearer)
        assert listed == (200, {"items": [], "nextCursor": None})
    assert all(json.loads(line) for line in server.output()), "LOG_FORMAT=json: every line is JSON"

    # scheduler: its jobs once, as the service's role
    scheduler = image | _on_this_machine(environment("scheduler", stack), stack)
    ran = _run([*command("scheduler", stack), "--once"], scheduler)
    jobs = [json.loads(line) for line in ran.stderr.splitlines()]
    assert [(line.get("job"), line["level"]) for line in jobs if "job" in line] == [
        ("maintenance purge", "INFO"), ("retention purge", "INFO")]
