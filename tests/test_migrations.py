"""The alembic migrations create exactly the schema the SQLAlchemy models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger.models import Base

#: Created in raw SQL by migration 0001 (an expression index the models cannot express).
RAW_SQL_INDEXES = {"uq_epochs_single_open"}


def test_models_match_migrations(engine):
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    unexpected = [
        difference
        for difference in differences
        if not (difference[0] == "remove_index" and difference[1].name in RAW_SQL_INDEXES)
    ]
    assert unexpected == []
