"""Epoch close, exact allocation, trees and withdrawals against PostgreSQL."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.epochs.allocation import allocate
from ledger.epochs.build import build_epoch, compute_entitlements
from ledger.epochs.service import close_epoch, ensure_open_epoch
from ledger.epochs.trees import read_leaf, tree_dump
from ledger.intake.service import submit_sessions
from ledger.intake.withdrawal import withdraw_session
from ledger.journal.service import balance_of, check_journal
from ledger.merkle import StandardMerkleTree, verify
from ledger.models import Allocation, ChainClaim, Entitlement, EntitlementDebit, EpochStatus, MerkleLeaf
from tests.ledger.factories import new_address, submission


def test_allocation_sums_to_emission_with_ties_to_lower_address():
    low, high = "0x" + "0" * 39 + "1", "0x" + "f" * 40
    shares = allocate(10, {high: 1, low: 1, "0x" + "8" * 40: 1})

    assert sum(shares.values()) == 10
    assert shares[low] == 4
    assert shares[high] == 3


def test_allocation_empty_when_no_points():
    assert allocate(10**24, {}) == {}


def test_entitlement_never_below_claimed():
    rows = compute_entitlements({"a": (100, 0)}, {}, {"a": 60}, {"a": 90})

    assert rows[0].cumulative_amount == 90
    assert rows[0].debt == 50


@pytest.fixture
def scored_epoch(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=2))
    contributors = [new_address() for _ in range(3)]
    items = [submission(c, now - timedelta(hours=1), clicks=100 * (i + 1)) for i, c in enumerate(contributors)]
    results = submit_sessions(db, items, settings=settings, now=now)
    return contributors, items, results


def test_close_allocates_emission_exactly(db, settings, now, scored_epoch):
    contributors, _, _ = scored_epoch

    epoch = close_epoch(db, settings=settings, now=now)

    assert epoch.status == EpochStatus.CLOSED
    rows = db.query(Allocation).filter_by(epoch=epoch.number).all()
    assert {row.contributor for row in rows} == set(contributors)
    assert sum(row.tokens for row in rows) == settings.emission_per_epoch


def test_close_not_due_returns_none(db, settings, now, scored_epoch):
    assert close_epoch(db, settings=settings, now=now - timedelta(hours=1, minutes=30)) is None


def test_empty_epoch_rolls_emission_over(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=2))
    closed = close_epoch(db, settings=settings, now=now)
    following = close_epoch(db, settings=settings, now=now + timedelta(hours=2))

    assert closed.allocated == 0
    assert following.emission == 2 * settings.emission_per_epoch


def test_build_stores_verifiable_proofs(db, settings, now, scored_epoch):
    epoch = close_epoch(db, settings=settings, now=now)

    built = build_epoch(db, epoch.number)

    assert built.status == EpochStatus.BUILT
    assert built.total_entitled == settings.emission_per_epoch
    leaves = db.query(MerkleLeaf).filter_by(epoch=epoch.number).all()
    assert len(leaves) == 6
    for leaf in leaves:
        root = built.claims_root if leaf.kind == "claims" else built.contributions_root
        encoding = ["address", "uint256"] if leaf.kind == "claims" else ["bytes32", "bytes32", "address", "uint256"]
        stored = read_leaf(db, epoch.number, leaf.kind, leaf.key)
        assert stored is not None
        assert stored.root == root
        assert verify(root, encoding, stored.value, stored.proof)


def test_withdraw_before_close_reverses_points(db, settings, now, scored_epoch):
    contributors, items, _ = scored_epoch

    withdraw_session(db, session_id=items[0].session_id, contributor=contributors[0], now=now)

    assert balance_of(db, contributors[0]) == 0
    assert check_journal(db).ok
    epoch = close_epoch(db, settings=settings, now=now)
    assert contributors[0] not in {row.contributor for row in db.query(Allocation).filter_by(epoch=epoch.number)}


def test_withdraw_after_close_debits_next_tree(db, settings, now, scored_epoch):
    contributors, items, _ = scored_epoch
    first = close_epoch(db, settings=settings, now=now)
    build_epoch(db, first.number)
    earned = db.query(Allocation).filter_by(epoch=first.number, contributor=contributors[0]).one().tokens

    withdraw_session(db, session_id=items[0].session_id, contributor=contributors[0], now=now)
    second = close_epoch(db, settings=settings, now=now + timedelta(hours=2))
    built = build_epoch(db, second.number)

    tree = StandardMerkleTree.load(tree_dump(db, second.number, "claims"))
    amounts = {value[0]: int(value[1]) for _, value in tree.entries()}
    debit = db.query(EntitlementDebit).filter_by(session_id=items[0].session_id).one()
    assert earned > 0
    # The debit is floor(points * emission / total points); the allocation may hold one more
    # unit from the largest-remainder step.
    assert debit.tokens in (earned, earned - 1)
    assert amounts.get(contributors[0], 0) == earned - debit.tokens
    assert debit.applied_epoch == second.number
    # The second epoch earned nothing, so its emission rolled over and only the first counts.
    assert built.total_entitled == settings.emission_per_epoch - debit.tokens


@given(
    emission=st.integers(0, 2**200),
    points=st.dictionaries(
        st.integers(1, 2**160 - 1).map(lambda n: "0x" + format(n, "040x")), st.integers(1, 10**12), max_size=40
    ),
)
def test_allocation_is_exact_largest_remainder(emission, points):
    shares = allocate(emission, points)

    if not points:
        assert shares == {}
        return
    total = sum(points.values())
    assert sum(shares.values()) == emission
    for address, share in shares.items():
        floor = emission * points[address] // total
        assert share in (floor, floor + 1)


def test_debit_after_claim_becomes_debt_then_recovered(db, settings, now):
    ensure_open_epoch(db, settings=settings, now=now - timedelta(hours=6))
    contributor, other = new_address(), new_address()
    first, _ = submit_sessions(
        db,
        [submission(contributor, now - timedelta(hours=5)), submission(other, now - timedelta(hours=5))],
        settings=settings,
        now=now - timedelta(hours=4),
    )
    epoch1 = build_epoch(db, close_epoch(db, settings=settings, now=now - timedelta(hours=3), force=True).number)
    published = db.query(Entitlement).filter_by(epoch=epoch1.number, contributor=contributor).one().cumulative_amount
    db.add(ChainClaim(tx_hash=b"\x01" * 32, log_index=0, block_number=1, block_hash=b"\x02" * 32,
                      account=contributor, amount=published, cumulative_amount=published, epoch=epoch1.number))
    db.flush()

    withdraw_session(db, session_id=first.session_id, contributor=contributor, now=now - timedelta(hours=2))
    epoch2 = build_epoch(db, close_epoch(db, settings=settings, now=now - timedelta(hours=1), force=True).number)
    after_debit = db.query(Entitlement).filter_by(epoch=epoch2.number, contributor=contributor).one()
    submit_sessions(db, [submission(contributor, now - timedelta(minutes=50))], settings=settings, now=now - timedelta(minutes=30))
    epoch3 = build_epoch(db, close_epoch(db, settings=settings, now=now, force=True).number)
    recovered = db.query(Entitlement).filter_by(epoch=epoch3.number, contributor=contributor).one()
    earned3 = db.query(Allocation).filter_by(epoch=epoch3.number, contributor=contributor).one().tokens

    assert after_debit.cumulative_amount == published
    assert after_debit.debt == db.query(EntitlementDebit).filter_by(session_id=first.session_id).one().tokens
    assert recovered.cumulative_amount == published + earned3 - after_debit.debt
    assert recovered.debt == 0
