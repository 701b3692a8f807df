"""The `loyalty` console script: Flask's CLI for this app (`flask --app loyalty` works the same), with
the operator commands of API.md. Commands parse, call a service, commit, print."""

import sys

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from loyalty import create_app
from loyalty.auth.models import STAFF_ROLES, Store
from loyalty.auth.services import create_api_client, create_staff_user, store_by_code
from loyalty.errors import DomainError
from loyalty.extensions import db


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
    store = _store_or_fail(store_code)
    client, key = create_api_client(db.session, name=name, store=store, scope=scope)
    db.session.commit()
    click.echo(f"API client {client.id} {name!r} for store {store.code}, scopes: {client.scopes}")
    click.echo(key)


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
    store = _store_or_fail(store_code) if store_code or role == "cashier" else None
    try:
        staff = create_staff_user(db.session, email=email, role=role, password=password, store=store)
    except DomainError as error:
        raise click.ClickException(f"{error.detail}: {error.errors}") from error
    db.session.commit()
    click.echo(f"staff user {staff.id} {staff.email} ({staff.role})")


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
        raise click.ClickException(error.detail) from error


command_groups = [api_key, user, ledger, demo, worker]


def main():
    FlaskGroup(create_app=create_app, help="loyalty operator commands")(prog_name="loyalty")
