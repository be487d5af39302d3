"""The `risk-register` command: database, demo data, serving, the OpenAPI document and API clients."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import click
import yaml
from alembic import command

from service import create_app, housekeeping, logs
from service.auth import service as auth
from service.auth.models import Role
from service.config import load_settings, log_format, log_level
from service.db import db
from service.errors import DomainError
from service.operations import alembic_config
from service.schemas import camelcase

ROOT = Path(__file__).resolve().parent.parent


@click.group()
def main() -> None:
    """Signal register for care institutions."""
    logs.configure(log_level(os.environ), log_format(os.environ))  # before settings: they may log a warning


@main.group("db")
def db_group() -> None:
    """Schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: the newest)."""
    command.upgrade(alembic_config(load_settings().database_url), revision)


@db_group.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Migrate the database back to REVISION (default: one step; `base` empties it)."""
    command.downgrade(alembic_config(load_settings().database_url), revision)


@db_group.command("grants")
@click.option("--role", "role", required=True, help="The PostgreSQL role the service connects as")
def db_grants(role: str) -> None:
    """Give the service's own role what it needs and no more: the access log is insert-only, but for the columns
    its sealer fills in once (PostgreSQL).

    Run after every `db upgrade` as the owner of the tables; idempotent."""
    from sqlalchemy import create_engine, text

    from service.audit.chain import SEALING_COLUMNS
    from service.audit.models import AccessEvent

    url = load_settings().database_url
    if not url.startswith("postgresql"):
        raise click.ClickException("grants apply to PostgreSQL only")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise click.ClickException("the role must be a plain PostgreSQL identifier")
    event_table = AccessEvent.__tablename__
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in (
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {event_table} FROM {role}",
            # The app's sealer writes these once per event (a trigger refuses a second time, and any other column).
            f"GRANT UPDATE ({', '.join(SEALING_COLUMNS)}) ON {event_table} TO {role}",
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
        ):
            connection.execute(text(statement))
    engine.dispose()
    click.echo(f"{role}: read and write on the register, insert-only on {event_table} but for sealing")


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="The port the printed commands use")
def demo(port: int) -> None:
    """Migrate, seed the Groningen demo data, and print fresh credentials for one client per role, with commands
    that use them."""
    from service import clock
    from service.demo import quick_start, seed_demo
    from service.incidents.service import IdentityKeys

    command.upgrade(alembic_config(load_settings().database_url), "head")
    app = create_app()
    with app.app_context():
        credentials = seed_demo(db.session, IdentityKeys.from_settings(app.extensions["settings"]),
                                chain_keys=app.extensions["chain_keys"])
        db.finish(commit=True)
    click.echo("\n".join(quick_start(credentials, port, clock.today())))


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on")
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--check", is_flag=True, help="Only check the settings and that BIND is free, then exit")
def serve(bind: str, workers: int, check: bool) -> None:
    """Serve the API with gunicorn (configuration: service/gunicorn.py)."""
    load_settings()  # fail here, not in every worker, when the environment is incomplete
    host, _, port = bind.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError:
            raise click.ClickException(f"{bind} is in use: stop what listens there, or choose another port "
                                       f"(make run PORT={int(port) + 1})") from None
    if check:
        return
    env = dict(os.environ)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in env:
        # Each worker counts for itself; the shared folder lets /metrics add them up.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="risk-register-metrics-")
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn", "--bind", bind,
            "--workers", str(workers), "service.wsgi:app"]
    os.execve(sys.executable, argv, env)  # noqa: S606 - replaces this process with gunicorn


def _document() -> dict[str, Any]:
    app = create_app()
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def _yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


@main.group()
def openapi() -> None:
    """The OpenAPI document generated from the code."""


@openapi.command("write")
@click.argument("path", default=str(ROOT / "openapi.yaml"), type=click.Path(dir_okay=False))
def openapi_write(path: str) -> None:
    """Write the document to PATH (default: openapi.yaml at the project root)."""
    Path(path).write_text(_yaml(_document()))
    click.echo(f"wrote {path}")


@openapi.command("check")
@click.argument("path", default=str(ROOT / "openapi.yaml"), type=click.Path(dir_okay=False))
def openapi_check(path: str) -> None:
    """Fail when PATH differs from what the code generates."""
    if not Path(path).exists() or Path(path).read_text() != _yaml(_document()):
        click.echo(f"{path} is out of date; run `risk-register openapi write`", err=True)
        sys.exit(1)
    click.echo(f"{path} is up to date")


@main.group()
def maintenance() -> None:
    """Housekeeping that a scheduler runs (cron, a Kubernetes CronJob)."""


@maintenance.command("purge")
def maintenance_purge() -> None:
    """Forget idempotency keys older than 24 hours and revocations of tokens that have expired."""
    click.echo(json.dumps(housekeeping.maintenance_purge(create_app())))


@main.group()
def stats() -> None:
    """Statistics rollups."""


@stats.command("rebuild")
def stats_rebuild() -> None:
    """Recompute every rollup from the incidents (the write path keeps them current; this repairs and checks)."""
    from service.stats.rollups import rebuild

    app = create_app()
    with app.app_context():
        count = rebuild(db.session)
        db.finish(commit=True)
    click.echo(json.dumps({"incidentsCounted": count}))


@stats.command("fold")
def stats_fold() -> None:
    """Fold every pending change into the rollups now (reads and the app's background folder do this anyway)."""
    from service.stats.folding import fold_everything

    click.echo(json.dumps({"changesFolded": fold_everything(create_app())}))


@main.group()
def keys() -> None:
    """Key rotation: add a key version, re-key what is stored, retire old versions (README: Rotating keys)."""


def _kinds() -> click.Choice:
    from service.keys.service import KINDS

    return click.Choice(sorted(KINDS))


def _key_folder(out: str | None) -> Path:
    settings = load_settings()
    if out is None and settings.production:
        raise click.UsageError("in production, name the folder for the new ring files with --out")
    return Path(out) if out else settings.instance_path


def _keys_command(work: Any) -> None:
    from service.keys.service import KeyCommandError

    try:
        click.echo(json.dumps(work()))
    except KeyCommandError as exc:
        raise click.ClickException(str(exc)) from None


@keys.command("rotate")
@click.option("--kind", type=_kinds(), required=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the ring files (default: the instance "
              "folder, where development settings read them)")
def keys_rotate(kind: str, out: str | None) -> None:
    """Write the kind's ring with a new active version; deploy it, then `keys rekey` (pseudonym, fingerprint)."""
    from service.keys.service import add_key

    _keys_command(lambda: add_key(load_settings(), kind, _key_folder(out)))


@keys.command("rekey")
@click.option("--kind", type=_kinds(), required=True)
@click.option("--batch", default=200, show_default=True, type=int, help="Values per committed batch")
def keys_rekey(kind: str, batch: int) -> None:
    """Re-key stored values to the active version while the service runs (resumes where a run stopped)."""
    from service.keys.service import rotate_stored

    app = create_app()
    _keys_command(lambda: rotate_stored(app.extensions["settings"], kind, db_engine(app), batch=batch))


@keys.command("retire")
@click.option("--kind", type=_kinds(), required=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the ring files (default: instance folder)")
def keys_retire(kind: str, out: str | None) -> None:
    """Write the kind's ring with its active version only (tokens: once the old kid's tokens have expired)."""
    from service.keys.service import retire_keys

    _keys_command(lambda: retire_keys(load_settings(), kind, _key_folder(out)))


@keys.command("status")
def keys_status() -> None:
    """Print each kind's versions, the active one, and what is still stored under older ones (JSON lines)."""
    from service.keys.service import KINDS, status

    app = create_app()
    for kind in sorted(KINDS):
        _keys_command(lambda kind=kind: status(app.extensions["settings"], kind, db_engine(app)))


def db_engine(app: Any) -> Any:
    return app.extensions["database"]["engine"]


@main.group()
def audit() -> None:
    """The access log."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the access log's hash chain; print the result as JSON (with the unsealed tail) and exit 1 when a link,
    hash or key handover is wrong."""
    from dataclasses import asdict

    from service.audit.chain import verify_chain

    app = create_app()
    with app.app_context():
        result = verify_chain(db.session, app.extensions["chain_keys"])
        db.finish(commit=False)
    click.echo(json.dumps({camelcase(k): v for k, v in asdict(result).items()}))
    if not result.valid:
        sys.exit(1)


@audit.command("seal")
def audit_seal() -> None:
    """Link every committed access event into the chain now (the app's workers do this within a second; this is
    for cron, a deployment with AUDIT_SEAL_INTERVAL=0, or before a downgrade)."""
    from service.audit.chain import unsealed_tail
    from service.audit.sealing import seal_everything

    app = create_app()
    sealed = seal_everything(app)
    with app.app_context():
        unsealed, oldest = unsealed_tail(db.session)
        db.finish(commit=False)
    click.echo(json.dumps({"sealed": sealed, "unsealed": unsealed, "oldestUnsealedSeconds": oldest}))


@audit.command("rotate-key")
def audit_rotate_key() -> None:
    """Hand the chain over to the newest version in CHAIN_KEYS (keep the older versions listed: verification needs
    them). Give every app host the new ring first: a sealer without the new key waits at the handover."""
    from service.audit.chain import rotate_chain_key
    from service.audit.sealing import seal_everything

    app = create_app()
    with app.app_context():
        try:
            rotate_chain_key(db.session, app.extensions["chain_keys"])
        except DomainError as refused:
            raise click.ClickException(refused.detail) from None
        db.finish(commit=True)
    seal_everything(app)
    click.echo(json.dumps({"keyVersion": app.extensions["chain_keys"].active}))


@main.group()
def attestation() -> None:
    """Signed statements of the signals about one resident."""


@attestation.command("verify")
@click.argument("statement_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A saved copy of /v1/oauth/jwks.json (default: the keys this installation publishes)")
def attestation_verify(statement_file: Path, jwks_file: Path | None) -> None:
    """Verify a statement offline: FILE holds the compact JWS or the JSON answer of POST
    /v1/incidents/_attestation. Prints the verified statement as JSON; exits 1 when it does not verify."""
    from service.incidents.attestation import STATEMENT_TYPE
    from service.signing import InvalidStatement, signing_keys, statement_kid, verify_statement

    text = statement_file.read_text(encoding="utf-8").strip()
    try:
        token = json.loads(text)["jws"] if text.startswith("{") else text
        jwks = json.loads(jwks_file.read_text(encoding="utf-8")) if jwks_file else {
            "keys": signing_keys(load_settings()).jwks()}
        statement = verify_statement(token, jwks)
        if statement.get("type") != STATEMENT_TYPE:  # another JWS under a published key (an access token, say)
            raise InvalidStatement(f"signed, but not a statement of signals (type {statement.get('type')!r})")
    except (InvalidStatement, ValueError, KeyError, TypeError) as exc:
        click.echo(json.dumps({"valid": False, "problem": str(exc)}))
        sys.exit(1)
    click.echo(json.dumps({"valid": True, "kid": statement_kid(token), "statement": statement}, ensure_ascii=False))


@main.group()
def retention() -> None:
    """Forgetting what the register no longer needs."""


@retention.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing")
def retention_purge(dry_run: bool) -> None:
    """Remove incidents older than RETENTION_YEARS (with revisions and rollup contributions), expired idempotency
    keys and revocations, and log an access event with the counts."""
    click.echo(json.dumps(housekeeping.retention_purge(create_app(), dry_run=dry_run)))


@main.command()
@click.option("--once", is_flag=True, help="Run each job once and exit (1 when one failed)")
def schedule(once: bool) -> None:
    """Run `maintenance purge` every hour and `retention purge` every day, until SIGTERM (for a deployment
    without cron, such as docker-compose.yml's scheduler). Both run at start."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    failures = housekeeping.run_timetable(create_app(), stop, once=once)
    if once and failures:
        sys.exit(1)


@main.group()
def clients() -> None:
    """API clients."""


@clients.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", required=True)
@click.option("--institution-id", type=click.UUID, help="For role institution")
@click.option("--municipality-code", "municipality_codes", multiple=True,
              help="For analysts and auditors; repeat, or '*' for national scope")
@click.option("--json", "as_json", is_flag=True, help="Print {clientId, clientSecret} as JSON")
def clients_create(role: str, name: str, institution_id: uuid.UUID | None, municipality_codes: tuple[str, ...],
                   as_json: bool) -> None:
    """Register a client and print its secret (shown this once)."""
    app = create_app()
    with app.app_context():
        try:
            client, secret = auth.create_client(db.session, name=name, role=Role(role),
                                                institution_id=institution_id, municipality_codes=municipality_codes)
        except DomainError as refused:
            problems = "; ".join(f"{e.pointer}: {e.detail}" for e in refused.errors)
            raise click.ClickException(f"{refused.detail} {problems}".strip()) from None
        client_id = str(client.id)
        db.finish(commit=True)
    if as_json:
        click.echo(json.dumps({"clientId": client_id, "clientSecret": secret}))
    else:
        click.echo(f"clientId={client_id}\nclientSecret={secret}\n(the secret is not shown again)")
