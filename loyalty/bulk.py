"""Writing many rows at once: how the sales, the ledger and the idempotency records are inserted,
and the members' balances and tiers and the lots' remaining points updated.

A multi-row INSERT is a statement whose text grows with its rows: SQLAlchemy renders it and psycopg
re-parses it on every call (too long for its cache; a fifth of a batch's CPU in
bench/profile_sale.py), and PostgreSQL plans it again for each row count. So on PostgreSQL, from
COPY_MIN_ROWS rows up, the ids are drawn from the table's sequence in one statement and the rows are
sent with COPY ... FROM STDIN, which has no SQL text to build, parse or plan. Even for a handful of
rows (the sales a group commit gathers) that halves the time spent waiting for the database, for
the same CPU in the app. A single row, and SQLite, take SQLAlchemy's INSERT (RETURNING the ids in
order).

Updates of many rows by id go the same way: on PostgreSQL one UPDATE ... FROM unnest(arrays), whose
text is the same for any number of rows, rather than an UPDATE per row; and so do inserts that must
skip rows whose unique key is taken (`insert_new_rows`: INSERT ... SELECT FROM unnest(arrays) ... ON
CONFLICT DO NOTHING), which COPY cannot do.
"""

import functools
import operator

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Json
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

# One row: a plain INSERT ... RETURNING id is one round trip where COPY takes two plus the id query;
# a plain UPDATE of one row needs no arrays. From this many rows up, COPY and UPDATE ... FROM unnest.
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
    names = [column.name for column in table.columns if column.name in given]
    # A Python default (a created_at) is taken once for all the rows, as SQL's now() would be.
    defaults = {column.name: default() for column in table.columns
                if column.name not in given and (default := _python_default(column)) is not None}
    processors = {column.name: processor for column in table.columns
                  if (processor := _copy_processor(column, connection.dialect)) is not None}
    filled = [processors[name](value) if name in processors and value is not None else value
              for name, value in defaults.items()]
    to_process = [(position, processors[name]) for position, name in enumerate(names) if name in processors]
    pick = operator.itemgetter(*names)
    quote = connection.dialect.identifier_preparer.quote
    copy_sql = (f"COPY {connection.dialect.identifier_preparer.format_table(table)} "
                f"({', '.join(quote(name) for name in [*names, *defaults])}) FROM STDIN")
    try:
        with connection.connection.dbapi_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in rows:
                values = [pick(row)] if len(names) == 1 else list(pick(row))
                for position, processor in to_process:
                    if values[position] is not None:
                        values[position] = processor(values[position])
                copy.write_row(values + filled)
    except psycopg.IntegrityError as error:
        raise IntegrityError(copy_sql, None, error) from error


def insert_new_rows(session: Session, table: sa.Table, rows: list[dict], *, unique: tuple[str, ...],
                    returning: tuple[str, ...], same: dict | None = None) -> list[sa.Row]:
    """Insert those of `rows` (dicts with the same columns; `same` the values of further columns, the
    same in every row; Python-side defaults fill the rest) whose `unique` columns (a unique constraint)
    no row holds yet, in the order of those columns, and return the `returning` columns of the rows
    inserted. A row another open transaction has inserted makes this statement wait for that
    transaction: if it commits, the row is skipped; if it rolls back (or deleted the row again), the
    row is inserted here. One statement either way, its text the same for any number of rows on
    PostgreSQL (INSERT ... SELECT FROM unnest(arrays)), as for update_rows."""
    if not rows:
        return []
    names = tuple(rows[0])
    same = dict(same or {})
    same.update({column.name: default() for column in table.columns
                 if column.name not in names and column.name not in same
                 and (default := _python_default(column)) is not None})
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        statement = (sqlite.insert(table).values([{**row, **same} for row in rows])
                     .on_conflict_do_nothing(index_elements=unique).returning(*(table.c[name] for name in returning)))
        return session.execute(statement).all()
    parameters = {f"c{position}": _array([row[name] for row in rows], table.c[name], connection.dialect)
                  for position, name in enumerate(names)}
    parameters.update({f"s{position}": _value(value, table.c[name], connection.dialect)
                       for position, (name, value) in enumerate(same.items())})
    sql = _insert_new_from_arrays(table, names, tuple(same), unique, returning, connection.dialect)
    return connection.exec_driver_sql(sql, parameters).all()


@functools.cache
def _insert_new_from_arrays(table: sa.Table, names: tuple[str, ...], same: tuple[str, ...],
                            unique: tuple[str, ...], returning: tuple[str, ...], dialect) -> str:
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(_array_placeholder(f"c{position}", table.c[name], dialect)
                       for position, name in enumerate(names))
    values = [f"new.{quote(name)}" for name in names] + [
        f"{_placeholder(f's{position}', table.c[name])}::{table.c[name].type.compile(dialect)}"
        for position, name in enumerate(same)]
    # ORDER BY: rows are inserted in this order, so two transactions inserting some of the same keys
    # take them in the same order, and cannot deadlock on them.
    return (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(quote(name) for name in (*names, *same))}) "
            f"SELECT {', '.join(values)} FROM unnest({arrays}) AS new({', '.join(map(quote, names))}) "
            f"ORDER BY {', '.join(f'new.{quote(name)}' for name in unique)} "
            f"ON CONFLICT ({', '.join(map(quote, unique))}) DO NOTHING RETURNING {', '.join(map(quote, returning))}")


def _array(values: list, column: sa.Column, dialect) -> list:
    processor = _copy_processor(column, dialect)
    return values if processor is None else [None if value is None else processor(value) for value in values]


def _value(value, column: sa.Column, dialect):
    processor = _copy_processor(column, dialect)
    return value if processor is None or value is None else processor(value)


def _placeholder(name: str, column: sa.Column) -> str:
    # JSON goes in binary: in text, psycopg escapes each document for the array literal, which makes
    # an array of answers cost several times their COPY (bench/profile_sale.py --steps).
    return f"%({name})b" if isinstance(column.type, sa.JSON) else f"%({name})s"


def _array_placeholder(name: str, column: sa.Column, dialect) -> str:
    return f"{_placeholder(name, column)}::{column.type.compile(dialect)}[]"


def update_rows(session: Session, table: sa.Table, rows: list[dict]) -> None:
    """Set columns of existing rows: each of `rows` holds the row's `id` and the new values (the same
    columns in every row, one row per id)."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "id"]
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
        session.execute(_update_by_id(table, tuple(names)), [
            {"row_id": row["id"], **{"new_" + name: row[name] for name in names}} for row in rows])
        return
    columns = [table.c.id, *(table.c[name] for name in names)]
    arrays = {f"c{position}": _array([row[column.name] for row in rows], column, connection.dialect)
              for position, column in enumerate(columns)}
    connection.exec_driver_sql(_update_from_arrays(table, tuple(names), connection.dialect), arrays)


@functools.cache
def _update_by_id(table: sa.Table, names: tuple[str, ...]) -> sa.Update:
    return (sa.update(table).where(table.c.id == sa.bindparam("row_id"))
            .values({name: sa.bindparam("new_" + name) for name in names}))


@functools.cache
def _update_from_arrays(table: sa.Table, names: tuple[str, ...], dialect) -> str:
    columns = [table.c.id, *(table.c[name] for name in names)]
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(_array_placeholder(f"c{position}", column, dialect) for position, column in enumerate(columns))
    assignments = ", ".join(f"{quote(name)} = new.{quote(name)}" for name in names)
    target = dialect.identifier_preparer.format_table(table)
    return (f"UPDATE {target} SET {assignments} FROM unnest({arrays}) AS new(id, {', '.join(map(quote, names))}) "
            f"WHERE {target}.id = new.id")


def _copy_processor(column: sa.Column, dialect):
    # SQLAlchemy leaves JSON to the driver's parameter binding, which COPY and arrays of values skip.
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
