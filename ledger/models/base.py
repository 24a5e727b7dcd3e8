"""Declarative base and column types shared by every table."""

from datetime import datetime

from sqlalchemy import DateTime, MetaData, Numeric, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Constraint names follow one pattern so alembic migrations stay reproducible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TokenAmount(TypeDecorator[int]):
    """A token amount in base units: NUMERIC(78, 0) in PostgreSQL, a Python int in code.

    78 digits hold any uint256. Floats are rejected on the way in, so no amount is ever rounded.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def process_bind_param(self, value: object, dialect: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"token amount must be an int, got {type(value).__name__}: {value!r}")
        return value

    def process_result_value(self, value: object, dialect: object) -> int | None:
        if value is None:
            return None
        return int(value)  # type: ignore[call-overload]


class Base(DeclarativeBase):
    """Base class of every mapped table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now_column() -> Mapped[datetime]:
    """Return a `timestamptz` column that defaults to the database clock."""
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
