"""loyalty: a membership and loyalty platform for retailers."""

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from loyalty.config import DefaultConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping | None = None) -> Flask:
    """Build the application: configuration, then a list of registrations. No database, Redis or
    network work happens here; that waits for the first request, command or job."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    configure(app, config)
    register_proxy_fix(app)
    register_logging(app)
    register_metrics(app)
    register_extensions(app)
    register_url_converters(app)
    register_json_parsing(app)
    register_blueprints(app)
    register_operations(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_commands(app)
    return app


def configure(app: Flask, overrides: Mapping | None) -> None:
    app.config.from_object(DefaultConfig)
    app.config.from_prefixed_env("LOYALTY")
    app.config.update(overrides or {})
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'loyalty.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = _with_psycopg_driver(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": app.config["DB_POOL_SIZE"], "max_overflow": 8,
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
    if app.config["REDIS_URL"] and app.config["RATELIMIT_STORAGE_URI"] == DefaultConfig.RATELIMIT_STORAGE_URI:
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    development = app.config["ENVIRONMENT"] == "development"
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if app.config.get(key) is None:
            app.config[key] = not development
    if not app.config["SECRET_KEY"]:
        if not development:
            raise RuntimeError("LOYALTY_SECRET_KEY must be set outside development")
        app.config["SECRET_KEY"] = _development_secret(Path(app.instance_path))
    if not app.config["PUBLIC_BASE_URL"] and not development:
        # Links in emails would otherwise follow the request's Host header, which a client can forge.
        raise RuntimeError("LOYALTY_PUBLIC_BASE_URL must be set outside development")


def _with_psycopg_driver(uri: str) -> str:
    # psycopg 3 is the driver we ship; a bare postgresql:// URL would ask SQLAlchemy for psycopg2.
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix):]
    return uri


def _development_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so a development server's cookies and card tokens
    survive restarts without anyone having to invent a secret."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def register_proxy_fix(app: Flask) -> None:
    """Behind TRUSTED_PROXY_HOPS reverse proxies, the client's address and scheme as they forwarded
    them: per-address limits would otherwise count every client as the proxy."""
    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_logging(app: Flask) -> None:
    """First, so its request hooks bracket all others: request id, access line (loyalty/logs.py)."""
    from loyalty.logs import register_logging as register

    register(app)


def register_metrics(app: Flask) -> None:
    from loyalty.metrics import register_metrics as register

    register(app)


def register_extensions(app: Flask) -> None:
    import loyalty.models  # noqa: F401  (every table in the metadata)
    from loyalty.extensions import api, babel, csrf, db, limiter, login_manager, migrate
    from loyalty.i18n import select_locale, select_timezone

    db.init_app(app)
    # Batch mode: SQLite can only ALTER a table by copying it.
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    limiter.init_app(app)
    api.init_app(app)


def register_url_converters(app: Flask) -> None:
    from loyalty.routing import register_url_converters as register

    register(app)


def register_json_parsing(app: Flask) -> None:
    """Request bodies are parsed as strict JSON (loyalty/request_json.py)."""
    from loyalty.request_json import register_json_parsing as register

    register(app)


def register_blueprints(app: Flask) -> None:
    from loyalty.extensions import api, csrf
    from loyalty.pos_api import blueprints as api_blueprints
    from loyalty.pos_api.auth import NoSessionForApi

    app.session_interface = NoSessionForApi()

    for blueprint in api_blueprints():
        # API clients authenticate with a bearer key, not a cookie: there is no session to forge.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)

    from loyalty.staff.views import staff

    app.register_blueprint(staff)

    from loyalty.portal.views import portal
    from loyalty.web.sign_in import staff_auth
    from loyalty.web.site import site

    app.register_blueprint(site)
    app.register_blueprint(staff_auth)
    app.register_blueprint(portal)

    from loyalty.marketing.dashboard_views import marketing

    app.register_blueprint(marketing)

    from loyalty.marketing.offer_views import marketing_offers

    app.register_blueprint(marketing_offers)

    from loyalty.admin.program_views import admin_program
    from loyalty.admin.views import admin

    app.register_blueprint(admin)
    app.register_blueprint(admin_program)


def register_operations(app: Flask) -> None:
    """/healthz, /readyz and /metrics (loyalty/operations.py)."""
    from loyalty.operations import register_operations as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from loyalty.pos_api.problems import register_problem_handlers

    register_problem_handlers(app)


def register_security_headers(app: Flask) -> None:
    """CSP, framing, nosniff, referrer, HSTS and no-store on personal pages (loyalty/web/security_headers.py)."""
    from loyalty.web.security_headers import register_security_headers as register

    register(app)


def register_commands(app: Flask) -> None:
    from loyalty.cli import command_groups

    for command in command_groups:
        app.cli.add_command(command)
