"""Fixtures of the operations tests: apps of their own configuration beside the session's, and the
metrics a scrape returns, parsed by prometheus-client's own parser."""

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loyalty import create_app
from loyalty.extensions import db, limiter


@pytest.fixture
def make_app(app, servers, clock):
    """Build apps with configuration overrides (on the session's database unless told otherwise);
    afterwards their connections are closed and what they changed of the process comes back: the
    logging the session's app set up (each app installs its handler on the root logger), and the rate
    limiter, one instance for all apps (each app gives it its storage, and its default limits stay)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    apps = []

    def make(**overrides):
        built = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "CLOCK": clock,
                            "SQLALCHEMY_DATABASE_URI": servers["database_url"], "REDIS_URL": servers["redis_url"],
                            **overrides})
        apps.append(built)
        return built

    yield make
    for built in apps:
        with built.app_context():
            db.engine.dispose()
    root.handlers[:] = handlers
    root.setLevel(level)
    limiter.limit_manager.set_default_limits([])
    limiter.init_app(app)  # the session app's storage again (its hooks are not added twice)


def scrape(client, headers=None) -> list:
    """Every sample of a GET /metrics, as prometheus-client's parser reads it."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return [sample for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples]


def total(samples: list, name: str, **labels) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(sample.value for sample in samples
               if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()))
