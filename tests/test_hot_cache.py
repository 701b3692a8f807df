"""The per-process copies of the program and the API keys (loyalty/cache.py)."""

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.points.models import EarningRule, ProgramSettings
from loyalty.points.program import load_program


def _write_behind_the_cache(app, statement):
    """A change made by another process: straight to the database, not through this one's session."""
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(statement)


def test_a_change_from_another_process_shows_once_the_copy_is_older_than_hot_cache_seconds(app, monkeypatch):
    with app.app_context():
        assert load_program(db.session).settings.hold_days == 0
    _write_behind_the_cache(app, sa.update(ProgramSettings).values(hold_days=9))
    with app.app_context():
        assert load_program(db.session).settings.hold_days == 0
    monkeypatch.setitem(app.config, "HOT_CACHE_SECONDS", 0)
    with app.app_context():
        assert load_program(db.session).settings.hold_days == 9


def test_a_change_committed_through_this_process_clears_the_copy_at_once(app):
    with app.app_context():
        assert load_program(db.session).earning_rules == ()
        db.session.add(EarningRule(name="double shoes", category="shoes", multiplier_percent=200))
        db.session.flush()
        # Flushed but not committed: other requests must not see it, so the copy stays.
        assert load_program(db.session).earning_rules == ()
        db.session.commit()
        assert [rule.name for rule in load_program(db.session).earning_rules] == ["double shoes"]


def test_a_bulk_update_through_this_process_clears_the_copy(app):
    with app.app_context():
        assert load_program(db.session).settings.hold_days == 0
        db.session.execute(sa.update(ProgramSettings).values(hold_days=3))
        db.session.commit()
        assert load_program(db.session).settings.hold_days == 3


def test_a_revoked_key_stops_working_in_another_process_within_hot_cache_seconds(app, factory, pos, monkeypatch):
    path = f"/members/{factory.member()}"
    assert pos.get(path).status_code == 200
    _write_behind_the_cache(app, sa.text("UPDATE api_clients SET revoked_at = created_at"))
    assert pos.get(path).status_code == 200  # the copy, for now
    monkeypatch.setitem(app.config, "HOT_CACHE_SECONDS", 0)
    assert pos.get(path).status_code == 401


def test_unknown_keys_are_not_kept(app, factory, client):
    from loyalty.cache import hot_cache

    path = f"/members/{factory.member()}"
    for n in range(20):
        assert client.get("/api/v1" + path, headers={"Authorization": f"Bearer lk_guess{n}"}).status_code == 401
    with app.app_context():
        assert not any(key[0] == "api-key" for key in hot_cache()._entries)
