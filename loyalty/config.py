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
    # PostgreSQL connections a web process keeps open: one per thread of gunicorn.conf.py. With
    # SQLAlchemy's default (5, and 10 more closed again on return), the threads beyond five opened a
    # connection, that is a PostgreSQL backend, for nearly every request. Up to 8 more open if needed.
    DB_POOL_SIZE = 32
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # None: jobs run inline in the calling process after its commit (embedded default).
    REDIS_URL = None
    # Seconds an enqueue waits for Redis (connect, then answer). Past it the job is kept in the
    # deferred_jobs table for the sweeper (loyalty/jobs.py), so a dead Redis slows a request by this much.
    JOBS_REDIS_TIMEOUT_SECONDS = 2
    # Coupon batches (loyalty/campaigns/batches.py): coupons per committed chunk; how long a queued or
    # running batch's progress may stand still before the sweeper starts it again (its worker died);
    # and the delays, in seconds, of RQ's tries after a failed or killed run.
    COUPON_BATCH_CHUNK_SIZE = 5000
    COUPON_BATCH_STALL_SECONDS = 600
    COUPON_BATCH_RETRY_INTERVALS = [10, 60, 300]
    # Campaign launches (loyalty/campaigns/campaigns.py): treatment members acted on per committed
    # chunk; how long a launching campaign may stand still before the sweeper starts its job again;
    # the delays, in seconds, of RQ's tries after a failed or killed run.
    CAMPAIGN_LAUNCH_CHUNK_SIZE = 2000
    CAMPAIGN_LAUNCH_STALL_SECONDS = 600
    CAMPAIGN_LAUNCH_RETRY_INTERVALS = [10, 60, 300]

    # docs/api.md: bodies over 1 MiB are refused with payload-too-large.
    MAX_CONTENT_LENGTH = 1024 * 1024
    API_RATE_LIMIT = "6000 per minute"
    # Failed lookups per API key, across its lookup endpoints (an unknown member number, phone or card
    # token; a coupon code that is unknown or another member's at /coupons/validate). Reached: every
    # lookup of the key answers 429 until the window passes. Slows guessing, not a till's typos.
    API_FAILED_LOOKUP_LIMIT = "30 per 10 minutes"
    API_BATCH_MAX_ITEMS = 1000
    # Seconds a web process keeps its copy of the program and the API keys (loyalty/cache.py): a change
    # made in another process takes effect within this time.
    HOT_CACHE_SECONDS = 5
    # Single sales that arrive together in one web process are posted in one DB transaction
    # (loyalty/pos_api/sale_posting.py); False gives every sale a transaction of its own.
    SALE_GROUP_COMMIT = True
    # How far in the future a sale's occurred_at may lie (clock skew between tills and server).
    SALE_FUTURE_TOLERANCE = timedelta(minutes=5)

    # Rotating QR card tokens (docs/api.md "Member codes").
    CARD_TOKEN_STEP_SECONDS = 60
    CARD_TOKEN_MAX_AGE_SECONDS = 120

    # flask-smorest / OpenAPI
    API_TITLE = "loyalty POS API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    # Flask-Limiter: Redis when configured (shared by all web processes), memory otherwise.
    # "loyalty-memory": limits' in-process store, made thread-safe (loyalty/rate_limits.py).
    # The guessing limits (sign-in, password reset, sign-up, the API's failed lookups) count in the
    # database whenever the store is the process's memory, so they hold across processes anyway.
    RATELIMIT_STORAGE_URI = "loyalty-memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_DEFAULT = None
    # Redis unreachable: count in the process's memory (and the database) instead of answering 500,
    # and ask Redis again after 1, 2, 4 ... 32 s. A counter that cannot be written is logged, never a 500.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # Passed to the Redis client of the limiter (ignored by the in-process store): a Redis that does not
    # answer costs the request that finds out, and each later recheck, at most about this long.
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # None: Secure everywhere but development (decided in `configure`). Flask's own default is False,
    # which would otherwise win over a `setdefault`.
    SESSION_COOKIE_SECURE = None
    REMEMBER_COOKIE_SECURE = None

    BABEL_DEFAULT_LOCALE = "en"
    # Dates and times are stored in UTC and shown in the store's zone; this one when no store is known.
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    # Relative to the package folder: loyalty/translations/<lang>/LC_MESSAGES/messages.mo
    BABEL_TRANSLATION_DIRECTORIES = "translations"
    LANGUAGES = ["en", "zh"]
    # The cookie the language switch sets (a year), read before the browser's Accept-Language.
    LANGUAGE_COOKIE = "lang"

    # Sign-in throttling (Flask-Limiter syntax). Only failed attempts count, per account and per
    # address, so a store's tills behind one address do not lock each other out by signing in.
    LOGIN_LIMIT_PER_ACCOUNT = "5 per 5 minutes"
    LOGIN_LIMIT_PER_ADDRESS = "30 per 5 minutes"
    # Password-reset requests, counted whatever the outcome (each one may send an email).
    PASSWORD_RESET_LIMIT_PER_ACCOUNT = "3 per hour"
    PASSWORD_RESET_LIMIT_PER_ADDRESS = "20 per hour"
    SIGNUP_LIMIT_PER_ADDRESS = "20 per hour"
    PASSWORD_RESET_MAX_AGE_SECONDS = 3600

    # Outgoing mail (password reset links). No host: the message is logged instead of sent, which
    # is what a development machine wants.
    SMTP_HOST = None
    SMTP_PORT = 25
    SMTP_USERNAME = None
    SMTP_PASSWORD = None
    SMTP_STARTTLS = False
    SMTP_TIMEOUT_SECONDS = 10
    MAIL_SENDER = "loyalty@localhost"
    # Links in emails are built on this base ("https://loyalty.example.com") rather than on the
    # request's Host header, which a client can forge. Required outside development (`configure`
    # refuses to start without it); None in development: the request's host.
    # TRUSTED_HOSTS (Flask's own key, LOYALTY_TRUSTED_HOSTS='["loyalty.example.com"]') is left unset:
    # with the base URL pinned, a forged Host no longer reaches a link, and a load balancer's or
    # orchestrator's probes of /healthz and /readyz by address would otherwise be refused with 400.
    PUBLIC_BASE_URL = None

    # Logs (loyalty/logs.py), all on stderr: "json" (one object per line, for a log collector) or
    # "text" (for a person at a terminal). None: "text" in development, "json" everywhere else.
    LOG_FORMAT = None
    # The root logger's level. INFO includes one access line per request; WARNING leaves out both.
    LOG_LEVEL = "INFO"

    # Operations endpoints (loyalty/operations.py). When set, GET /metrics answers only
    # `Authorization: Bearer <token>`, else 401; unset or empty, it is open to whoever reaches it.
    # Choose a token that is not all digits: LOYALTY_* values are parsed as JSON where they can be.
    # Metrics of several gunicorn workers add up only with PROMETHEUS_MULTIPROC_DIR (an environment
    # variable, not a key here; gunicorn.conf.py sets it up; see loyalty/metrics.py).
    METRICS_TOKEN = None
    # Seconds each /readyz check may take (database connect and statement, Redis): a dead database
    # then makes the probe answer 503 in about this time rather than hang.
    READINESS_TIMEOUT_SECONDS = 2

    # Reverse proxies in front of the app that append to X-Forwarded-For / X-Forwarded-Proto (werkzeug's
    # ProxyFix). 0: the headers are ignored and the client is whoever connects. Behind one load
    # balancer, 1: the client address (per-address limits, logs) and https come from its headers. Never
    # more than the proxies really there: a client could then choose its own address.
    TRUSTED_PROXY_HOPS = 0

    # Tests replace this with a settable clock; see loyalty.clock.
    CLOCK = None
