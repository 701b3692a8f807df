"""Secrets and cookies: production refuses to start without a SECRET_KEY or its public base URL, and
its session and remember-me cookies are Secure, HttpOnly and SameSite=Lax."""

import pytest
from flask import Flask

from loyalty import configure, create_app

BASE_URL = "https://loyalty.example.com"


@pytest.fixture
def clean_environment(monkeypatch):
    for key in ("LOYALTY_SECRET_KEY", "LOYALTY_ENVIRONMENT", "LOYALTY_SESSION_COOKIE_SECURE",
                "LOYALTY_REMEMBER_COOKIE_SECURE", "LOYALTY_PUBLIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)


def _configured(overrides) -> Flask:
    app = Flask("loyalty", instance_relative_config=True)
    configure(app, overrides)
    return app


def test_secret_key_is_required_outside_development(clean_environment):
    with pytest.raises(RuntimeError, match="LOYALTY_SECRET_KEY"):
        create_app({"ENVIRONMENT": "production"})


def test_the_public_base_url_is_required_outside_development(clean_environment):
    """Else reset links would be built on the request's Host header, which a client can forge."""
    with pytest.raises(RuntimeError, match="LOYALTY_PUBLIC_BASE_URL"):
        create_app({"ENVIRONMENT": "production", "SECRET_KEY": "s3cret"})


def test_the_public_base_url_from_the_environment_is_used(clean_environment, monkeypatch):
    monkeypatch.setenv("LOYALTY_PUBLIC_BASE_URL", BASE_URL)
    assert _configured({"ENVIRONMENT": "production", "SECRET_KEY": "s3cret"}).config["PUBLIC_BASE_URL"] == BASE_URL


def test_secret_key_from_the_environment_is_used(clean_environment, monkeypatch):
    monkeypatch.setenv("LOYALTY_SECRET_KEY", "from-the-environment")
    app = _configured({"ENVIRONMENT": "production", "PUBLIC_BASE_URL": BASE_URL})
    assert app.config["SECRET_KEY"] == "from-the-environment"


def test_production_cookies_are_secure_http_only_and_lax(clean_environment):
    config = _configured({"ENVIRONMENT": "production", "SECRET_KEY": "s3cret", "PUBLIC_BASE_URL": BASE_URL}).config
    assert config["SESSION_COOKIE_SECURE"] is True and config["REMEMBER_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True and config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax" and config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_development_cookies_work_over_plain_http(clean_environment):
    config = _configured({"ENVIRONMENT": "development", "SECRET_KEY": "s3cret"}).config
    assert config["SESSION_COOKIE_SECURE"] is False


def test_an_explicit_cookie_setting_wins(clean_environment):
    config = _configured({"ENVIRONMENT": "production", "SECRET_KEY": "s3cret", "PUBLIC_BASE_URL": BASE_URL,
                          "SESSION_COOKIE_SECURE": False}).config
    assert config["SESSION_COOKIE_SECURE"] is False


def test_a_production_session_cookie_carries_secure(clean_environment):
    app = _configured({"ENVIRONMENT": "production", "SECRET_KEY": "s3cret", "PUBLIC_BASE_URL": BASE_URL})

    @app.route("/touch")
    def touch():
        from flask import session

        session["seen"] = True
        return "ok"

    cookie = app.test_client().get("/touch").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_passwords_are_hashed_with_memory_hard_argon2id(monkeypatch):
    from loyalty.auth import services

    monkeypatch.undo()  # the real hasher, not the cheap one these tests sign in with
    hasher = services.password_hasher
    # OWASP's floor for Argon2id is 19 MiB of memory and 2 passes.
    assert hasher.type.name == "ID"
    assert hasher.memory_cost >= 19 * 1024 and hasher.time_cost >= 2
    assert hasher.hash("x").startswith("$argon2id$")


def test_a_postgresql_pool_keeps_a_connection_per_server_thread(clean_environment):
    """gunicorn.conf.py runs 32 threads a process: each may hold a connection, and none should have to
    open one (a new PostgreSQL backend) per request, as SQLAlchemy's default pool of 5 made them."""
    options = _configured({"SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": "postgresql://db/loyalty"}).config[
        "SQLALCHEMY_ENGINE_OPTIONS"]
    assert options == {"pool_size": 32, "max_overflow": 8}
    chosen = _configured({"SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": "postgresql://db/loyalty",
                          "DB_POOL_SIZE": 8, "SQLALCHEMY_ENGINE_OPTIONS": {"max_overflow": 0}}).config
    assert chosen["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_size": 8, "max_overflow": 0}
    assert _configured({"SECRET_KEY": "s"}).config["SQLALCHEMY_ENGINE_OPTIONS"] == {}
