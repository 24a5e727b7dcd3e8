"""The one-statement read queries behind the public earnings and claim payload routes."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import sessionmaker

import ledger.earnings.service as earnings_service
import ledger.epochs.trees as trees
from ledger.db import ReadOnlySessionError, read_only_factory
from ledger.earnings.service import claim_proof_and_claimed, earnings_of
from ledger.epochs.build import build_epoch
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.errors import NotFound
from ledger.intake.service import submit_sessions
from ledger.merkle import claims_tree
from ledger.models import Entitlement, Epoch
from ledger.models.contributor import Contributor
from tests.ledger.factories import new_address, submission


def _active_epoch(db, settings, now, contributors):
    ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=2))
    submit_sessions(db, [submission(c, now - timedelta(hours=1), active_seconds=600 + 60 * i) for i, c in enumerate(contributors)], settings=settings, now=now)
    epoch = build_epoch(db, close_epoch(db, settings=settings, now=now).number)
    db.execute(update(Epoch).where(Epoch.number == epoch.number).values(status="active"))
    return epoch


@pytest.mark.parametrize("leaves", [1, 2, 3, 11])
def test_claim_proofs_cross_node_chunks(db, settings, now, monkeypatch, leaves):
    # Four nodes a chunk puts the siblings of one proof in several chunk rows.
    monkeypatch.setattr(trees, "NODES_PER_CHUNK", 4)
    monkeypatch.setattr(earnings_service, "NODES_PER_CHUNK", 4)
    contributors = [new_address() for _ in range(leaves)]
    epoch = _active_epoch(db, settings, now, contributors)

    entitlements = db.query(Entitlement).filter_by(epoch=epoch.number).all()
    expected = claims_tree([(row.contributor, row.cumulative_amount) for row in entitlements])
    for index, row in enumerate(entitlements):
        proof, claimed = claim_proof_and_claimed(db, row.contributor, distributor=None, chain_id=None)
        assert list(proof.proof) == expected.proof(index)
        assert proof.cumulative_amount == row.cumulative_amount
        assert proof.root == "0x" + epoch.claims_root.hex()
        assert claimed == 0


def test_claim_proof_without_entitlement_or_active_root(db, settings, now):
    with pytest.raises(NotFound) as no_root:
        claim_proof_and_claimed(db, new_address(), distributor=None, chain_id=None)
    assert no_root.value.code == "no_active_epoch"

    _active_epoch(db, settings, now, [new_address()])
    with pytest.raises(NotFound) as no_leaf:
        claim_proof_and_claimed(db, new_address(), distributor=None, chain_id=None)
    assert no_leaf.value.code == "no_entitlement"


def test_earnings_of_reads_every_epoch_in_one_statement(db, settings, now):
    contributor = new_address()
    epoch = _active_epoch(db, settings, now, [contributor, new_address()])
    ensure_open_epoch(db, settings=settings, now=now)
    later = submit_sessions(db, [submission(contributor, now - timedelta(minutes=30), active_seconds=300)], settings=settings, now=now)
    assert later[0].status == "scored"

    earnings = earnings_of(db, contributor)

    entitlement = db.get(Entitlement, (epoch.number, contributor))
    assert [e.epoch for e in earnings.epochs] == [epoch.number, epoch.number + 1]
    closed, open_ = earnings.epochs
    assert closed.tokens > 0
    assert closed.cumulative_amount == entitlement.cumulative_amount
    assert open_.status == "open"
    assert open_.tokens == 0
    assert open_.points > 0
    assert open_.cumulative_amount is None
    assert earnings.cumulative_amount == earnings.claimable == entitlement.cumulative_amount
    assert earnings.active_epoch == epoch.number
    assert isinstance(earnings.cumulative_amount, int)


def test_read_only_sessions_autocommit_and_refuse_writes(committing_factory):
    read_factory = read_only_factory(committing_factory)
    address = new_address()

    with read_factory() as db:
        first = db.execute(text("SELECT now()")).scalar_one()
        time.sleep(0.01)
        second = db.execute(text("SELECT now()")).scalar_one()
        # now() is the start of the transaction: it moves because each statement is its own.
        assert second > first

        db.add(Contributor(address=address))
        with pytest.raises(ReadOnlySessionError):
            db.flush()

    with committing_factory() as db:
        assert db.get(Contributor, address) is None


def test_read_only_factory_without_engine_is_the_factory():
    factory = sessionmaker()
    assert read_only_factory(factory) is factory
