"""Appending many rows at once: how the sales, the ledger and the idempotency records are inserted.

A multi-row INSERT is a statement whose text grows with its rows: SQLAlchemy renders it and psycopg
re-parses it on every call (too long for its cache; a fifth of a batch's CPU in
bench/profile_sale.py), and PostgreSQL plans it again for each row count. So on PostgreSQL, from
COPY_MIN_ROWS rows up, the ids are drawn from the table's sequence in one statement and the rows are
sent with COPY ... FROM STDIN, which has no SQL text to build, parse or plan. Even for a handful of
rows (the sales a group commit gathers) that halves the time spent waiting for the database, for
the same CPU in the app. A single row, and SQLite, take SQLAlchemy's INSERT (RETURNING the ids in
order).
"""

import functools

import psycopg
from psycopg.types.json import Json
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

# One row: a plain INSERT ... RETURNING id is one round trip where COPY takes two plus the id query.
COPY_MIN_ROWS = 2


def insert_rows(session: Session, table: sa.Table, rows: list[dict], *, return_ids: bool = False) -> list[int]:
    """Insert `rows` (dicts of column values; Python-side column defaults fill the rest) in one unit;
    returns their new ids in order when `return_ids`. A unique or foreign key violation raises
    SQLAlchemy's IntegrityError, whichever way the rows went."""
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
        insert, insert_returning_id, insert_many_returning_ids = _inserts(table)
        if len(rows) == 1:  # a single sale: the plain execute path, cheaper than an executemany of one
            if return_ids:
                return [session.execute(insert_returning_id, rows[0]).scalar_one()]
            session.execute(insert, rows[0])
            return []
        if return_ids:
            return session.execute(insert_many_returning_ids, rows).scalars().all()
        session.execute(insert, rows)
        return []
    ids = []
    if return_ids:
        ids = connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) FROM generate_series(1, %(rows)s)",
            {"table": table.name, "rows": len(rows)},
        ).scalars().all()
        rows = [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)]
    _copy(connection, table, rows)
    return ids


@functools.cache
def _inserts(table: sa.Table) -> tuple[sa.Insert, sa.Insert, sa.Insert]:
    """INSERT, INSERT ... RETURNING id, and the many-row form returning ids in order: built once."""
    insert = sa.insert(table)
    return insert, insert.returning(table.c.id), insert.returning(table.c.id, sort_by_parameter_order=True)


def _copy(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    given = set().union(*rows)
    columns = [column for column in table.columns if column.name in given or _python_default(column)]
    defaults = {column.name: _python_default(column) for column in columns if column.name not in given}
    processors = {column.name: _copy_processor(column, connection.dialect) for column in columns}
    names = ", ".join(connection.dialect.identifier_preparer.quote(column.name) for column in columns)
    copy_sql = f"COPY {connection.dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
    try:
        with connection.connection.dbapi_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([_value(column.name, row, defaults, processors) for column in columns])
    except psycopg.IntegrityError as error:
        raise IntegrityError(copy_sql, None, error) from error


def _copy_processor(column: sa.Column, dialect):
    # SQLAlchemy leaves JSON to the driver's parameter binding, which COPY does not use.
    if isinstance(column.type, sa.JSON):
        return Json
    return column.type.bind_processor(dialect)


def _python_default(column: sa.Column):
    """A column's Python-side default as a no-argument callable, or None (the database's then)."""
    default = column.default
    if default is None or not getattr(default, "is_scalar", False) and not getattr(default, "is_callable", False):
        return None
    if default.is_scalar:
        return lambda: default.arg
    return lambda: default.arg(None)


def _value(name: str, row: dict, defaults: dict, processors: dict):
    value = row[name] if name in row else defaults[name]()
    processor = processors[name]
    return processor(value) if processor is not None and value is not None else value
