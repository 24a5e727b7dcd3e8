"""Set-based allocation, trees stored as node chunks, and the migration to that storage."""

import json
import uuid
from datetime import timedelta

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session as DbSession

from ledger.db import migrate
from ledger.epochs.allocation import allocate
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch, epoch_points
from ledger.epochs.trees import CLAIMS, CONTRIBUTIONS, claim_key, contribution_key, read_leaf, tree_dump
from ledger.intake.service import submit_sessions
from ledger.merkle import StandardMerkleTree, claims_tree, contributions_tree, session_id_to_bytes32
from ledger.models import Allocation, Entitlement, Session
from tests.conftest import ADMIN_URL, _database_url
from tests.ledger.factories import new_address, submission


def _scored_epoch(db, settings, now, activity):
    """Open an epoch and score one session per (contributor, active seconds) pair in it."""
    ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=2))
    items = [
        submission(contributor, now - timedelta(hours=1), active_seconds=seconds) for contributor, seconds in activity
    ]
    submit_sessions(db, items, settings=settings, now=now)
    return items


def test_sql_allocation_matches_reference(db, settings, now):
    # Equal activity gives equal points, so equal remainders decided by the address order.
    contributors = [new_address() for _ in range(7)]
    activity = [(contributor, 600 if index < 5 else 660) for index, contributor in enumerate(contributors)]
    _scored_epoch(db, settings, now, activity)
    points = epoch_points(db, ensure_open_epoch(db, settings=settings, now=now).number)

    epoch = close_epoch(db, settings=settings, now=now)

    expected = allocate(epoch.emission, points)
    stored = {row.contributor: row.tokens for row in db.query(Allocation).filter_by(epoch=epoch.number)}
    assert len(set(points.values())) == 2
    assert stored == expected
    assert epoch.allocated == epoch.emission
    assert epoch.total_points == sum(points.values())


def test_stored_trees_match_python_trees(db, settings, now):
    contributors = [new_address() for _ in range(5)]
    items = _scored_epoch(db, settings, now, [(contributor, 600) for contributor in contributors])
    epoch = build_epoch(db, close_epoch(db, settings=settings, now=now).number)

    entitlements = db.query(Entitlement).filter_by(epoch=epoch.number).all()
    expected_claims = claims_tree([(row.contributor, row.cumulative_amount) for row in entitlements])
    assert epoch.claims_root == expected_claims.root_bytes
    for index, row in enumerate(entitlements):
        leaf = read_leaf(db, epoch.number, CLAIMS, claim_key(row.contributor))
        assert leaf is not None
        assert leaf.value == [row.contributor, str(row.cumulative_amount)]
        assert leaf.proof == expected_claims.proof(index)

    sessions = [db.get(Session, item.session_id) for item in items]
    expected_contributions = contributions_tree(
        [(session.session_id, session.content_hash, session.contributor, session.points) for session in sessions]
    )
    assert epoch.contributions_root == expected_contributions.root_bytes
    for index, session in enumerate(sessions):
        leaf = read_leaf(db, epoch.number, CONTRIBUTIONS, contribution_key(session.session_id))
        assert leaf is not None
        assert leaf.value == expected_contributions.at(index)
        assert leaf.proof == expected_contributions.proof(index)


def test_claims_dump_loads_with_stored_root(db, settings, now):
    _scored_epoch(db, settings, now, [(new_address(), 600), (new_address(), 660), (new_address(), 660)])
    epoch = build_epoch(db, close_epoch(db, settings=settings, now=now).number)

    dump = tree_dump(db, epoch.number, CLAIMS)

    assert dump is not None
    loaded = StandardMerkleTree.load(dump)
    assert loaded.root_bytes == epoch.claims_root
    assert len(loaded) == 3


def test_read_leaf_unknown_key_is_none(db, settings, now):
    _scored_epoch(db, settings, now, [(new_address(), 600)])
    epoch = build_epoch(db, close_epoch(db, settings=settings, now=now).number)

    assert read_leaf(db, epoch.number, CLAIMS, claim_key(new_address())) is None
    assert read_leaf(db, epoch.number, CONTRIBUTIONS, contribution_key(uuid.uuid4())) is None
    assert tree_dump(db, epoch.number + 1, CLAIMS) is None


def test_migration_converts_stored_trees():
    """Trees stored with proofs per leaf (revision 0002) are readable after the upgrade."""
    name = f"ledger_test_migration_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        migrate(url, "0002")
        accounts = [new_address() for _ in range(3)]
        claims = claims_tree([(account, 10**18 * (index + 1)) for index, account in enumerate(accounts)])
        session_id = uuid.uuid4()
        contributions = contributions_tree([(session_id, bytes(range(32)), accounts[0], 700)])
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO epochs (number, status, opened_at, emission, rollover) VALUES (1, 'built', now(), 0, 0)"))
            _insert_v1_tree(connection, CLAIMS, claims, keys=accounts)
            _insert_v1_tree(connection, CONTRIBUTIONS, contributions, keys=[str(session_id)])

        migrate(url)

        with DbSession(engine) as db:
            for index, account in enumerate(accounts):
                leaf = read_leaf(db, 1, CLAIMS, claim_key(account))
                assert leaf is not None
                assert leaf.proof == claims.proof(index)
                assert leaf.value == claims.at(index)
            contribution = read_leaf(db, 1, CONTRIBUTIONS, contribution_key(session_id))
            assert contribution is not None
            assert contribution.value[0] == "0x" + session_id_to_bytes32(session_id).hex()
            assert contribution.root == contributions.root_bytes
            assert StandardMerkleTree.load(tree_dump(db, 1, CLAIMS)).root == claims.root
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_v1_tree(connection, kind, tree, *, keys):
    """Store `tree` as revision 0002 did: the dump as text and the proof in every leaf row."""
    dump = tree.dump()
    connection.execute(
        text("INSERT INTO merkle_trees (epoch, kind, root, leaf_count, dump) VALUES (1, :kind, :root, :count, :dump)"),
        {"kind": kind, "root": tree.root_bytes, "count": len(tree), "dump": json.dumps(dump)},
    )
    for index, entry in enumerate(dump["values"]):
        connection.execute(
            text(
                "INSERT INTO merkle_leaves (epoch, kind, key, leaf_hash, value, proof) "
                "VALUES (1, :kind, :key, :leaf_hash, CAST(:value AS jsonb), CAST(:proof AS jsonb))"
            ),
            {
                "kind": kind,
                "key": keys[index],
                "leaf_hash": bytes.fromhex(dump["tree"][entry["treeIndex"]][2:]),
                "value": json.dumps(entry["value"]),
                "proof": json.dumps(tree.proof(index)),
            },
        )
