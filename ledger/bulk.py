"""Bulk writes with PostgreSQL COPY, inside the caller's SQLAlchemy transaction.

COPY skips per-row statement overhead, which dominates when a batch writes thousands of rows.
It has no ON CONFLICT, so callers use it only for rows they have proven new (under locks).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session


def copy_rows(db: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append `rows` (tuples in `columns` order) to `table` with COPY FROM STDIN.

    Values are adapted by psycopg as in a query: wrap JSON in `psycopg.types.json.Jsonb`.
    """
    connection = db.connection().connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def next_ids(db: Session, sequence: str, count: int) -> list[int]:
    """Reserve `count` values of a sequence in one round trip."""
    if count == 0:
        return []
    return list(
        db.scalars(text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :count)"), {"sequence": sequence, "count": count})
    )
