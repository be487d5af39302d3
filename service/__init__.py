"""The signal register: create_app() is the only factory.

The packages form layers, lowest first; a module imports its own package and lower layers only, never a higher one
nor a neighbour of its own layer (tests/test_layers.py reads every import and fails otherwise):

1. core: config, clock, db, errors, schemas, screening, arguments, http, pagination, periods, signals, logs, metrics,
   openapi, signing, spreadsheet (core modules may import each other, without circles);
2. auth: clients, tokens, roles and the caller's scope;
3. audit: the access log, which records the domains above it and knows none of them (views say what they touched;
   create_app hands it the registry's municipality lookup);
4. taxonomy, registry;
5. guidance (the next meldcode step and reporting routes, from a data file beside the taxonomy);
6. incidents, which announce their changes (signals.incidents_changed) instead of calling statistics;
7. stats (listening to incidents) and exports;
8. keys: rotating every kind of key, re-keying what incidents store (statistics follow through the signal);
9. the application: this module, cli, demo, retention, housekeeping, operations, ratelimit, pages, docs,
   dashboard, wsgi, gunicorn, models, migrations.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_smorest.spec.plugins import FlaskPlugin

from service import dashboard, docs, http, logs, metrics, operations, ratelimit, signals, signing
from service.audit import recording
from service.auth import access
from service.auth.access import public
from service.clock import CLOCK
from service.config import API_VERSION, ConfigurationError, Settings, load_settings
from service.db import db
from service.http import ConventionsPlugin, RegisterApi, register_conventions
from service.openapi import DocumentPlugin, ExamplesPlugin
from service.registry import service as registry_service
from service.stats.disclosure import DisclosureRules

API_PREFIX = "/v1"


class VersionedPathsPlugin(FlaskPlugin):
    """Paths in the document are relative to the server URL /v1, which carries the major version."""

    @staticmethod
    def flaskpath2openapi(path: str) -> str:
        path = FlaskPlugin.flaskpath2openapi(path)
        return path.removeprefix(API_PREFIX) or "/"


class RegisterFlask(Flask):
    def log_exception(self, exc_info: Any) -> None:
        logs.log_unhandled(self.logger, exc_info)


def _api_config(settings: Settings) -> dict[str, Any]:
    return {
        "API_TITLE": "Signal register for care institutions",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": (
                    "Care institutions log signals of sexual and criminal exploitation of young people without "
                    "naming anyone; municipalities see hotspots without anyone being identifiable; auditors "
                    "check what was recorded and who looked at it. Resource names are English (a deviation "
                    "from /core/interface-language, for the software that calls us); labels carry Dutch."
                ),
                "contact": {"name": "Signal register team", "email": "register@example.org",
                            "url": "https://example.org/signal-register"},
                "license": {"name": "EUPL-1.2", "url": "https://eupl.eu/1.2/en/"},
            },
            "servers": [{"url": API_PREFIX, "description": "This deployment"}],
        },
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
    }


def create_app(settings: Settings | Mapping[str, str] | None = None) -> Flask:
    """Build the app from settings (or from an environment mapping, or from os.environ)."""
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    logs.configure(settings.log_level, settings.log_format)

    app = RegisterFlask(__name__, instance_path=str(settings.instance_path), static_folder=None)
    app.config.update(_api_config(settings))
    app.url_map.strict_slashes = True
    app.extensions["settings"] = settings
    if settings.clock_start is not None:
        CLOCK.start_at(settings.clock_start)
    try:
        app.extensions["disclosure"] = DisclosureRules(settings.disclosure_k, settings.dominance_n,
                                                       settings.dominance_share)
    except ValueError as exc:
        raise ConfigurationError(f"disclosure settings: {exc}") from None

    # Statements (attestations) are signed with keys of their own; the JWKS publishes them beside the token keys.
    app.extensions["signing_keys"] = signing.signing_keys(settings)
    app.extensions["published_keys"] = app.extensions["signing_keys"].jwks()

    db.init_app(app, settings.database_url)
    # Order matters: request id first, then who is calling, then what they send and accept.
    http.init_app(app)
    access.init_app(app, settings)
    ratelimit.init_app(app, settings)
    http.init_negotiation(app)
    recording.init_app(app, municipality_of=lambda institution_id: registry_service.municipality_of(
        db.session, institution_id))
    operations.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(docs.blp)
    app.register_blueprint(dashboard.blp)

    api = RegisterApi(spec_kwargs={"flask_plugin": VersionedPathsPlugin(), "marshmallow_plugin": DocumentPlugin(),
                                   "extra_plugins": [ConventionsPlugin(), ExamplesPlugin()]})
    api.init_app(app)
    register_conventions(api.spec, token_url=f"{API_PREFIX}/oauth/token")

    from service.audit.routes import blp as audit_events
    from service.auth.routes import clients, oauth
    from service.exports.routes import blp as exports
    from service.guidance.routes import blp as guidance
    from service.incidents.routes import blp as incidents
    from service.registry.routes import blp as registry
    from service.stats import rollups
    from service.stats.routes import blp as stats
    from service.taxonomy.routes import blp as taxonomy

    # Statistics listen to what incidents announce (incidents never import statistics); connected once per process.
    signals.incidents_changed.connect(rollups.defer)
    signals.pseudonyms_rekeyed.connect(rollups.rename_residents)
    for blueprint in (oauth, clients, registry, taxonomy, guidance, incidents, stats, exports, audit_events):
        api.register_blueprint(blueprint)
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith("api-docs."):
            # The document is public by design; flask-smorest serves it from a bound method.
            app.view_functions[endpoint] = public(functools.wraps(view)(functools.partial(view)))
    return app
