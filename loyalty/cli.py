"""The `loyalty` console script: Flask's CLI for this app (`flask --app loyalty` works the same), with
the operator commands of docs/api.md. Commands parse, call a service, commit once, print; a refused change
exits non-zero with the reason and leaves the database as it was.

Lists print one header row and aligned columns separated by at least two spaces, "-" for nothing, times
in UTC ISO 8601 ("2026-12-03T09:00:00Z"): `awk -F '  +'` splits them even where a name holds a space."""

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from loyalty import create_app
from loyalty.auth.models import STAFF_ROLES, Store
from loyalty.auth.services import (
    create_api_client,
    create_staff_user,
    create_store,
    list_api_clients,
    list_staff_users,
    list_stores,
    revoke_api_client_by_prefix,
    set_staff_active,
    set_staff_password,
    staff_by_email,
    store_by_code,
)
from loyalty.clock import utc_text, utcnow
from loyalty.errors import DomainError
from loyalty.extensions import db


@click.group("store", help="Stores: a fresh install has none, and every API key belongs to one.")
def store():
    pass


@store.command("create")
@click.option("--code", required=True, help="e.g. S001 (kept upper case)")
@click.option("--name", required=True)
@click.option("--timezone", default="Asia/Shanghai", show_default=True, help="IANA time zone name")
@with_appcontext
def store_create(code, name, timezone):
    with _refusals():
        created = create_store(db.session, code=code, name=name, timezone=timezone, actor=None)
    db.session.commit()
    click.echo(f"store {created.code} {created.name!r} ({created.timezone})")


@store.command("list")
@with_appcontext
def store_list():
    _print_table(("CODE", "NAME", "TIMEZONE", "CREATED"),
                 [(row.code, row.name, row.timezone, _utc(row.created_at)) for row in list_stores(db.session)])


@click.group("api-key", help="API keys for POS and e-commerce systems.")
def api_key():
    pass


@api_key.command("create")
@click.option("--name", required=True)
@click.option("--store", "store_code", default=None, help="store code (default: the first store)")
@click.option("--scope", type=click.Choice(["pos", "manage"]), default="pos", show_default=True)
@with_appcontext
def api_key_create(name, store_code, scope):
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    key_store = _store_or_fail(store_code)
    with _refusals():
        client, key = create_api_client(db.session, name=name, store=key_store, scope=scope)
    db.session.commit()
    click.echo(f"API client {client.id} {name!r} for store {key_store.code}, scopes: {client.scopes}")
    click.echo(key)


@api_key.command("list")
@with_appcontext
def api_key_list():
    """Every key, newest first, revoked ones too. LAST_USED is coarse (to within minutes)."""
    _print_table(("PREFIX", "NAME", "STORE", "SCOPE", "CREATED", "LAST_USED", "REVOKED"), [
        (client.key_prefix, client.name, client.store.code, "manage" if client.has_scope("manage") else "pos",
         _utc(client.created_at), _utc(client.last_used_at), _utc(client.revoked_at))
        for client in list_api_clients(db.session)])


@api_key.command("revoke")
@click.argument("prefix")
@with_appcontext
def api_key_revoke(prefix):
    """Revoke the key PREFIX names (its prefix as `api-key list` shows it). Running web processes
    refuse it within HOT_CACHE_SECONDS."""
    with _refusals():
        client = revoke_api_client_by_prefix(db.session, prefix, actor=None, now=utcnow())
    db.session.commit()
    click.echo(f"revoked API key {client.key_prefix} {client.name!r} (store {client.store.code})")


@click.group("user", help="Staff accounts.")
def user():
    pass


@user.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True)
@click.option("--password", default=None, help="prompted for when omitted")
@click.option("--store", "store_code", default=None)
@with_appcontext
def user_create(email, role, password, store_code):
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    staff_store = _store_or_fail(store_code) if store_code or role == "cashier" else None
    with _refusals():
        staff = create_staff_user(db.session, email=email, role=role, password=password, store=staff_store)
    db.session.commit()
    click.echo(f"staff user {staff.id} {staff.email} ({staff.role})")


@user.command("list")
@with_appcontext
def user_list():
    _print_table(("EMAIL", "ROLE", "STORE", "ACTIVE", "CREATED"), [
        (staff.email, staff.role, staff.store.code if staff.store else None, "yes" if staff.active else "no",
         _utc(staff.created_at)) for staff in list_staff_users(db.session)])


@user.command("disable")
@click.argument("email")
@with_appcontext
def user_disable(email):
    """The account can no longer sign in, and its open sessions are refused from their next request."""
    _set_active(email, False)


@user.command("enable")
@click.argument("email")
@with_appcontext
def user_enable(email):
    _set_active(email, True)


def _set_active(email: str, active: bool) -> None:
    word = "enabled" if active else "disabled"
    with _refusals():
        staff = staff_by_email(db.session, email)
        if staff.active == active:
            click.echo(f"{staff.email} was already {word}")
            return
        set_staff_active(db.session, staff, active, actor=None)
    db.session.commit()
    click.echo(f"{staff.email} {word}")


@user.command("set-password")
@click.argument("email")
@click.option("--password", default=None, help="prompted for (hidden, twice) when omitted")
@with_appcontext
def user_set_password(email, password):
    """A new password; every session signed in with the old one ends."""
    with _refusals():
        staff = staff_by_email(db.session, email)
        if password is None:
            password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        set_staff_password(db.session, staff, password, actor=None)
    db.session.commit()
    click.echo(f"password of {staff.email} changed; their sessions have ended")


@click.group("ledger", help="The points ledger.")
def ledger():
    pass


@ledger.command("verify")
@with_appcontext
def ledger_verify():
    """Check the ledger invariants on live data; exits 1 and lists every break."""
    from loyalty.points.services import verify_ledger

    report = verify_ledger(db.session)
    for problem in report.problems:
        click.echo(f"BROKEN: {problem}", err=True)
    if not report.ok:
        click.echo(f"ledger verify: {len(report.problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo("ledger verify: ok")


@click.command("demo")
@click.option("--members", default=2000, show_default=True)
@click.option("--days", default=365, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when the database already holds members")
@with_appcontext
def demo(members, days, seed, if_empty):
    """Load demo data: stores, staff, members and a year of sales, posted through the same services."""
    from loyalty.demo.loading import load_demo
    from loyalty.members.models import Member

    if if_empty and db.session.scalar(sa.select(Member.id).limit(1)) is not None:
        click.echo("demo: the database already holds members; nothing loaded")
        return

    summary = load_demo(db.session, members=members, days=days, seed=seed)
    for line in summary:
        click.echo(line)


@click.command("worker")
@click.option("--queue", "queues", multiple=True, help="queues to serve (default: all)")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@click.option("--no-scheduler", is_flag=True, help="do not run the periodic-job scheduler")
@with_appcontext
def worker(queues, burst, no_scheduler):
    """Run an RQ worker, and (unless told not to) the scheduler of the periodic jobs beside it."""
    from loyalty.worker import run_worker

    if not current_app.config["REDIS_URL"]:
        raise click.ClickException("LOYALTY_REDIS_URL is not set: without Redis, jobs run inline")
    run_worker(current_app, queues or None, burst=burst, scheduler=not no_scheduler)


def _store_or_fail(code: str | None) -> Store:
    try:
        return store_by_code(db.session, code)
    except DomainError as error:
        hint = "" if code else "; create one first: loyalty store create --code S001 --name NAME"
        raise click.ClickException(error.detail + hint) from error


@contextmanager
def _refusals() -> Iterator[None]:
    """A DomainError as a ClickException (exit status 1) naming what was wrong with which field."""
    try:
        yield
    except DomainError as error:
        fields = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in (error.errors or {}).items())
        raise click.ClickException(f"{error.detail} ({fields})" if fields else error.detail) from error


def _utc(value: datetime | None) -> str | None:
    return utc_text(value.replace(microsecond=0)) if value else None


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str | None]]) -> None:
    cells = [list(headers), *([cell if cell not in (None, "") else "-" for cell in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


command_groups = [store, api_key, user, ledger, demo, worker]


def main():
    FlaskGroup(create_app=create_app, help="loyalty operator commands")(prog_name="loyalty")
