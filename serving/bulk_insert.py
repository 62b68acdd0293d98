"""Many rows into one table in one ``executemany``, without SQLAlchemy's per-row parameter handling.

``conn.execute(insert(table), rows)`` re-derives, for every row and column, which bind processor applies
and builds a parameter dict: for a 1,000-decision batch (decisions and schedules, 17 and 7 columns) that
was ~30 ms of a ~70 ms log write, more than SQLite's own work (measured here with py-spy under load and
a phase timer in-process). Here the statement is compiled once per table, dialect and column list, each
column's processor is looked up once, and the driver gets plain tuples (or dicts, for a named paramstyle)
through ``exec_driver_sql``. The values are converted by the very processors SQLAlchemy would use (the
engine's ``json_serializer`` for JSON, the dialect's for datetimes and booleans), so the stored rows are
the same, which ``tests/serving/test_bulk_insert.py`` checks on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

_Plan = tuple[str, tuple[str, ...], list[tuple[Callable[[Any], Any] | None, bool]], bool]
_PLANS: dict[tuple, _Plan] = {}


def _plan(conn: Connection, table: Table, statement: Insert | None, columns: tuple[str, ...]) -> _Plan:
    dialect = conn.dialect
    key = (id(dialect), table.name, id(statement), columns)
    found = _PLANS.get(key)
    if found is None:
        compiled = (statement if statement is not None else insert(table)).compile(dialect=dialect,
                                                                                    column_keys=list(columns))
        order = tuple(compiled.positiontup) if compiled.positional else columns
        # (processor, whether its values are hashable scalars: those are converted once per distinct value)
        processors = [(table.c[name].type.dialect_impl(dialect).bind_processor(dialect),
                       not isinstance(table.c[name].type, JSON)) for name in order]
        found = (compiled.string, order, processors, bool(compiled.positional))
        if len(_PLANS) >= 256:
            _PLANS.clear()
        _PLANS[key] = found
    return found


def _column(values: list, process: Callable[[Any], Any] | None, scalar: bool) -> list:
    if process is None:
        return values
    if not scalar:
        return [process(value) for value in values]
    done: dict = {}  # a batch shares its decision time, carriers, schedules
    out = []
    for value in values:
        # equal is not enough: 1 == 1.0 == True, and 14:00+00:00 == 09:00-05:00 (SQLite keeps the wall time)
        key = (type(value), getattr(value, "tzinfo", None), value)
        found = done.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = done[key] = process(value)
        out.append(found)
    return out


_UNSEEN = object()


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
                statement: Insert | None = None) -> None:
    """Insert ``rows`` (dicts with the same keys, column names of ``table``) in one driver call.

    ``statement``: an insert of ``table`` with more to it (``ON CONFLICT DO NOTHING``), else a plain one.
    Errors are the driver's, wrapped by SQLAlchemy as usual (``IntegrityError`` for a duplicate key)."""
    if not rows:
        return
    columns = tuple(rows[0])
    sql, order, processors, positional = _plan(conn, table, statement, columns)
    converted = [_column([row[name] for row in rows], process, scalar)
                 for name, (process, scalar) in zip(order, processors, strict=True)]
    if positional:
        params: list = list(zip(*converted, strict=True))
    else:
        params = [dict(zip(order, values, strict=True)) for values in zip(*converted, strict=True)]
    conn.exec_driver_sql(sql, params)


_IF_ABSENT: dict[tuple[str, str, str], Insert] = {}
_UPSERTS = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def insert_if_absent(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, key: str) -> None:
    """:func:`insert_rows`, leaving out rows whose ``key`` is already stored (``ON CONFLICT DO NOTHING``),
    in the caller's transaction: a concurrent writer of the same row neither fails nor aborts it. On a
    database without that clause each row is tried under a savepoint."""
    if not rows:
        return
    upsert = _UPSERTS.get(conn.dialect.name)
    if upsert is not None:
        plan = (conn.dialect.name, table.name, key)
        statement = _IF_ABSENT.get(plan)
        if statement is None:
            statement = _IF_ABSENT[plan] = upsert(table).on_conflict_do_nothing(index_elements=[key])
        insert_rows(conn, table, rows, statement=statement)
        return
    for row in rows:
        try:
            with conn.begin_nested():
                conn.execute(insert(table).values(**row))
        except IntegrityError:
            pass
