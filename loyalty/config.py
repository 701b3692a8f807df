"""Default configuration. Every key can be overridden by a `LOYALTY_<KEY>` environment variable
(values are parsed as JSON where they can be) or by the mapping given to `create_app`."""

from datetime import timedelta


class DefaultConfig:
    # "development" allows a generated SECRET_KEY and non-Secure cookies; anything else refuses both.
    ENVIRONMENT = "development"
    SECRET_KEY = None

    # None: an SQLite file in the instance folder (the embedded first-run default).
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # None: jobs run inline in the calling process after its commit (embedded default).
    REDIS_URL = None

    # API.md: bodies over 1 MiB are refused with payload-too-large.
    MAX_CONTENT_LENGTH = 1024 * 1024
    API_RATE_LIMIT = "6000 per minute"
    API_BATCH_MAX_ITEMS = 1000
    # How far in the future a sale's occurred_at may lie (clock skew between tills and server).
    SALE_FUTURE_TOLERANCE = timedelta(minutes=5)

    # Rotating QR card tokens (API.md "Member codes").
    CARD_TOKEN_STEP_SECONDS = 60
    CARD_TOKEN_MAX_AGE_SECONDS = 120

    # flask-smorest / OpenAPI
    API_TITLE = "loyalty POS API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    # Flask-Limiter: Redis when configured (shared by all web processes), memory otherwise.
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_DEFAULT = None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    BABEL_DEFAULT_LOCALE = "en"
    LANGUAGES = ["en", "zh"]

    # Tests replace this with a settable clock; see loyalty.clock.
    CLOCK = None
