"""Signed (EIP-712) claims sent by a relayer, role administration, and a randomized check that
long claim sequences never mint above the cap or above an account's entitlement."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from ledger.chain.contracts import deploy_contracts, distributor_contract, load_artifact
from ledger.chain.signed_claims import SignedClaimRequest
from tests.contracts.conftest import Chain
from tests.contracts.test_distributor import (
    ANCHORER_ROLE,
    INVALID_PROOF,
    NOTHING_TO_CLAIM,
    PAUSER_ROLE,
    TOKEN,
    UNAUTHORIZED,
    ZERO_ROOT,
    ClaimsTree,
    anchor,
    anchor_active,
    balance,
)

pytestmark = pytest.mark.chain

DEFAULT_ADMIN_ROLE = b"\x00" * 32
INVALID_NONCE = "InvalidAccountNonce(address,uint256)"
INVALID_SIGNATURE = "InvalidSignature(address)"


def signed_call(chain, tree: ClaimsTree, signer, *, recipient, nonce=None, deadline=None, account=None,
                amount=None, proof=None):  # fmt: skip
    """Return the `claimWithSig` call for `signer`'s signature; keyword arguments override parts."""
    account = account or signer.address
    tree_account, tree_amount, tree_proof = tree.claim_args(signer)
    request = SignedClaimRequest(
        account=account,
        recipient=recipient,
        cumulative_amount=tree_amount if amount is None else amount,
        nonce=chain.distributor.functions.nonces(account).call() if nonce is None else nonce,
        deadline=chain.latest_timestamp() + 600 if deadline is None else deadline,
    )
    signature = request.sign(signer, chain_id=chain.deployment.chain_id, distributor=chain.distributor.address)
    return chain.distributor.functions.claimWithSig(
        request.account, request.recipient, request.cumulative_amount, request.nonce, request.deadline,
        tree_proof if proof is None else proof, signature,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# claimWithSig


def test_signed_claim_mints_to_recipient(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN, roles.bob: 40 * TOKEN})
    anchor_active(chain, roles, 1, tree)

    receipt = chain.transact(roles.carol, signed_call(chain, tree, roles.alice, recipient=roles.outsider.address))

    assert balance(chain, roles.outsider) == 100 * TOKEN
    assert balance(chain, roles.alice) == 0
    assert chain.distributor.functions.claimed(roles.alice.address).call() == 100 * TOKEN
    assert chain.distributor.functions.nonces(roles.alice.address).call() == 1
    relayed = chain.distributor.events.ClaimRelayed().process_receipt(receipt, errors=DISCARD)
    assert [dict(event["args"]) for event in relayed] == [
        {"account": roles.alice.address, "recipient": roles.outsider.address, "nonce": 0, "relayer": roles.carol.address}
    ]
    claimed = chain.distributor.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert [dict(event["args"]) for event in claimed] == [
        {"account": roles.alice.address, "amount": 100 * TOKEN, "cumulativeAmount": 100 * TOKEN, "epoch": 1}
    ]


def test_signed_claim_replay_rejected(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    call = signed_call(chain, tree, roles.alice, recipient=roles.alice.address)
    chain.transact(roles.carol, call)

    assert chain.expect_revert(roles.carol, call, INVALID_NONCE) == (roles.alice.address, 1)


def test_signed_claim_future_nonce_rejected(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    call = signed_call(chain, tree, roles.alice, recipient=roles.alice.address, nonce=5)

    assert chain.expect_revert(roles.carol, call, INVALID_NONCE) == (roles.alice.address, 0)


def test_signed_claim_deadline_inclusive(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    deadline = chain.latest_timestamp() + 100
    call = signed_call(chain, tree, roles.alice, recipient=roles.alice.address, deadline=deadline)

    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [deadline])
    chain.transact(roles.carol, call)

    assert balance(chain, roles.alice) == 100 * TOKEN


def test_signed_claim_expired(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    deadline = chain.latest_timestamp() - 1
    call = signed_call(chain, tree, roles.alice, recipient=roles.alice.address, deadline=deadline)

    assert chain.expect_revert(roles.carol, call, "SignatureExpired(uint256)") == (deadline,)


def test_signed_claim_wrong_signer(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN, roles.bob: 40 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    # Bob signs a claim for Alice's entitlement, naming himself as recipient.
    _, amount, proof = tree.claim_args(roles.alice)
    call = signed_call(chain, tree, roles.bob, recipient=roles.bob.address, account=roles.alice.address, amount=amount, proof=proof)

    assert chain.expect_revert(roles.carol, call, INVALID_SIGNATURE) == (roles.alice.address,)


def test_signed_claim_relayer_changes_recipient(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    signed = signed_call(chain, tree, roles.alice, recipient=roles.alice.address)
    args = list(signed.args)
    args[1] = roles.carol.address

    call = chain.distributor.functions.claimWithSig(*args)

    assert chain.expect_revert(roles.carol, call, INVALID_SIGNATURE) == (roles.alice.address,)


def test_signed_claim_zero_recipient(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    call = signed_call(chain, tree, roles.alice, recipient="0x" + "00" * 20)

    chain.expect_revert(roles.carol, call, "ZeroAddress()")


def test_signed_claim_checks_proof_and_amount(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN, roles.bob: 40 * TOKEN})
    chain.expect_revert(roles.carol, signed_call(chain, tree, roles.alice, recipient=roles.alice.address), "NoActiveEpoch()")
    anchor_active(chain, roles, 1, tree)

    bad_proof = signed_call(chain, tree, roles.alice, recipient=roles.alice.address, proof=[keccak(text="x")])
    chain.expect_revert(roles.carol, bad_proof, INVALID_PROOF)
    chain.transact(roles.alice, chain.distributor.functions.claim(*tree.claim_args(roles.alice)))
    again = signed_call(chain, tree, roles.alice, recipient=roles.alice.address)
    assert chain.expect_revert(roles.carol, again, NOTHING_TO_CLAIM) == (roles.alice.address, 100 * TOKEN, 100 * TOKEN)


def test_signed_claim_paused(chain, roles):
    tree = ClaimsTree({roles.alice: 100 * TOKEN})
    anchor_active(chain, roles, 1, tree)
    chain.transact(roles.guardian, chain.distributor.functions.pause())

    call = signed_call(chain, tree, roles.alice, recipient=roles.alice.address)

    chain.expect_revert(roles.carol, call, "EnforcedPause()")


def test_eip712_domain(chain):
    domain = chain.distributor.functions.eip712Domain().call()

    assert tuple(domain[1:5]) == ("RewardDistributor", "1", chain.deployment.chain_id, chain.distributor.address)


# ---------------------------------------------------------------------------------------------
# roles and pause state


def test_admin_grants_and_revokes_anchorer(chain, roles):
    functions = chain.distributor.functions
    chain.transact(roles.admin, functions.grantRole(ANCHORER_ROLE, roles.carol.address))
    chain.transact(roles.carol, functions.anchor(1, ZERO_ROOT, ZERO_ROOT, 0))

    chain.transact(roles.admin, functions.revokeRole(ANCHORER_ROLE, roles.carol.address))

    call = functions.anchor(2, ZERO_ROOT, ZERO_ROOT, 0)
    assert chain.expect_revert(roles.carol, call, UNAUTHORIZED) == (roles.carol.address, ANCHORER_ROLE)


def test_only_admin_grants_roles(chain, roles):
    call = chain.distributor.functions.grantRole(ANCHORER_ROLE, roles.outsider.address)

    for sender in (roles.outsider, roles.anchorer, roles.guardian):
        assert chain.expect_revert(sender, call, UNAUTHORIZED) == (sender.address, DEFAULT_ADMIN_ROLE)


def test_pause_state_errors(chain, roles):
    functions = chain.distributor.functions
    chain.expect_revert(roles.guardian, functions.unpause(), "ExpectedPause()")
    chain.transact(roles.guardian, functions.pause())
    chain.expect_revert(roles.guardian, functions.pause(), "EnforcedPause()")
    assert chain.distributor.functions.hasRole(PAUSER_ROLE, roles.guardian.address).call()


def test_constructors_reject_zero_role_holders(chain, roles, w3):
    artifact = load_artifact("RewardDistributor")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    token, admin, anchorer, guardian = chain.token.address, roles.admin.address, roles.anchorer.address, roles.guardian.address
    zero = "0x" + "00" * 20

    chain.expect_revert(roles.admin, factory.constructor(token, admin, zero, guardian, 1, 0), "ZeroAddress()")
    chain.expect_revert(roles.admin, factory.constructor(token, admin, anchorer, zero, 1, 0), "ZeroAddress()")
    token_artifact = load_artifact("OwnershipToken")
    token_factory = w3.eth.contract(abi=token_artifact["abi"], bytecode=token_artifact["bytecode"])
    chain.expect_revert(roles.admin, token_factory.constructor(zero), "ZeroMinter()")


def test_anchor_rejects_total_above_uint128(w3, roles):
    # Only an emission near 2**128 per epoch reaches the uint128 storage of totalEntitled.
    deployment = deploy_contracts(
        w3, roles.admin, admin=roles.admin.address, anchorer=roles.anchorer.address, guardian=roles.guardian.address,
        emission_per_epoch=2**255, challenge_period=0,
    )  # fmt: skip
    call = distributor_contract(w3, deployment.distributor_address).functions.anchor(1, ZERO_ROOT, ZERO_ROOT, 2**128)

    assert Chain(w3, deployment).expect_revert(roles.anchorer, call, "SafeCastOverflowedUintDowncast(uint8,uint256)") == (128, 2**128)


# ---------------------------------------------------------------------------------------------
# randomized claim sequences


@pytest.mark.parametrize("seed", [1, 2])
def test_random_claims_stay_within_cap_and_entitlement(chain, roles, seed):
    rng = random.Random(seed)
    people = [roles.alice, roles.bob, roles.carol, roles.outsider]
    emission = chain.emission_per_epoch
    functions = chain.distributor.functions
    entitled = {person.address: 0 for person in people}
    claimed = {person.address: 0 for person in people}
    trees: dict[int, ClaimsTree] = {}
    outcomes = {"minted": 0, "nothing": 0, "cap": 0, "stale": 0}

    for epoch in range(1, 7):
        # Entitlements mostly grow, sometimes fall (withdrawn sessions); the anchorer sometimes
        # publishes more than the emission and under-reports the total, which only the cap stops.
        for person in people:
            change = rng.choice([0, 1, 2, 4, 8]) * emission // 10 - (emission // 20 if rng.random() < 0.15 else 0)
            entitled[person.address] = max(entitled[person.address] + change, 0)
        entries = {person: entitled[person.address] for person in people if entitled[person.address] > 0}
        if not entries:
            entries = {people[0]: 1}
            entitled[people[0].address] = 1
        tree = ClaimsTree(entries)
        trees[epoch] = tree
        anchor_active(chain, roles, epoch, tree, total=min(tree.total, epoch * emission))
        cap = functions.cumulativeEmission(epoch).call()

        for _ in range(5):
            person = rng.choice(list(entries))
            relayed = rng.random() < 0.4
            use_stale = epoch > 1 and rng.random() < 0.15
            source = trees[rng.randrange(1, epoch)] if use_stale else tree
            if person.address not in source.entitlements:
                continue
            amount = source.entitlements[person.address]
            if relayed:
                call = signed_call(chain, source, person, recipient=person.address)
            else:
                call = functions.claim(*source.claim_args(person))
            supply = chain.token.functions.totalSupply().call()

            if use_stale and source.root != tree.root:
                chain.expect_revert(roles.carol, call, INVALID_PROOF)
                outcomes["stale"] += 1
            elif amount <= claimed[person.address]:
                chain.expect_revert(roles.carol, call, NOTHING_TO_CLAIM)
                outcomes["nothing"] += 1
            elif supply + amount - claimed[person.address] > cap:
                chain.expect_revert(roles.carol, call, "MintAboveCap(uint256,uint256)")
                outcomes["cap"] += 1
            else:
                chain.transact(roles.carol, call)
                claimed[person.address] = amount
                outcomes["minted"] += 1

            supply = chain.token.functions.totalSupply().call()
            assert supply <= cap
            assert supply == sum(claimed.values())
            for someone in people:
                assert functions.claimed(someone.address).call() == claimed[someone.address]
                assert balance(chain, someone) == claimed[someone.address]
                assert claimed[someone.address] <= max(
                    (t.entitlements.get(someone.address, 0) for t in trees.values()), default=0
                )

    # The fixed seeds reach every branch, so the invariants above were checked after each kind.
    assert all(count > 0 for count in outcomes.values()), outcomes
