"""Measure the gas of an anchor, a first claim and a later claim at several claims-tree sizes.

For each size 2^k it deploys fresh contracts on a local anvil and builds a full claims tree of
2^k (address, uint256) leaves with sorted-pair hashing. It anchors the tree, lets the challenge
period pass and claims for two accounts. Then it anchors a second tree in which one of them is
entitled to more, and claims again. Gas is the receipt's gasUsed, the figure a wallet pays for,
including the 21,000 base cost and calldata.

    .venv/bin/python bench/gas.py
    .venv/bin/python bench/gas.py --sizes 4 10 --json gas.json

"first claim" is an account's first claim after another account has claimed, so the token's
total supply is already non-zero, as it is for every claim but the very first one in the
contract; that very first claim is printed too. Exits with status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from eth_utils import keccak
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.chain.contracts import deploy_contracts, distributor_contract, load_artifact  # noqa: E402
from ledger.chain.devnet import start_anvil  # noqa: E402

#: Targets in gas; a measured figure above its target makes the run exit with status 1.
TARGETS = {"anchor": 110_000, "first_claim": 95_000, "later_claim": 65_000}

TOKEN = 10**18
CHALLENGE_PERIOD = 3_600


def claim_leaf(account: bytes, amount: int) -> bytes:
    """Hash a claims leaf as OpenZeppelin's StandardMerkleTree does for (address, uint256)."""
    return keccak(keccak(account.rjust(32, b"\x00") + amount.to_bytes(32, "big")))


def build_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Return every level of a perfect tree over `leaves` (a power of two), leaves first."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([keccak(min(a, b) + max(a, b)) for a, b in zip(below[0::2], below[1::2], strict=True)])
    return levels


def proof_of(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        proof.append(level[index ^ 1])
        index //= 2
    return proof


class Tree:
    """A claims tree of 2^depth leaves: two measured accounts and random filler accounts."""

    def __init__(self, depth: int, entitlements: dict[bytes, int], filler: list[bytes]) -> None:
        self.entitlements = entitlements
        leaves = [claim_leaf(account, amount) for account, amount in entitlements.items()]
        leaves += filler[: 2**depth - len(leaves)]
        self.order = sorted(range(len(leaves)), key=lambda i: leaves[i])
        sorted_leaves = [leaves[i] for i in self.order]
        self.levels = build_levels(sorted_leaves)
        self.position = {leaves[i]: position for position, i in enumerate(self.order)}

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, account: bytes) -> list[bytes]:
        leaf = claim_leaf(account, self.entitlements[account])
        return proof_of(self.levels, self.position[leaf])


def send(w3: Web3, sender, call) -> int:
    transaction = call.build_transaction({"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address)})
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(transaction).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.to_0x_hex()} reverted")
    return int(receipt["gasUsed"])


def measure(w3: Web3, accounts, depth: int, rng: random.Random) -> dict[str, int]:
    """Deploy, anchor two epochs of 2^depth leaves and claim; return gas by step."""
    admin, anchorer, alice, bob = accounts[0], accounts[1], accounts[3], accounts[4]
    deployment = deploy_contracts(
        w3,
        admin,
        admin=admin.address,
        anchorer=anchorer.address,
        guardian=admin.address,
        emission_per_epoch=10**9 * TOKEN,
        challenge_period=CHALLENGE_PERIOD,
    )
    distributor = distributor_contract(w3, deployment.distributor_address).functions
    filler = [rng.randbytes(32) for _ in range(2**depth)]
    a, b = bytes.fromhex(alice.address[2:]), bytes.fromhex(bob.address[2:])

    first = Tree(depth, {a: 123_456_789 * 10**12, b: 98_765_432 * 10**12}, filler)
    gas = {"anchor_first": send(w3, anchorer, distributor.anchor(1, first.root, rng.randbytes(32), 10**6 * TOKEN))}
    w3.provider.make_request("evm_increaseTime", [CHALLENGE_PERIOD])
    w3.provider.make_request("evm_mine", [])
    gas["very_first_claim"] = send(w3, bob, distributor.claim(bob.address, first.entitlements[b], first.proof(b)))
    gas["first_claim"] = send(w3, alice, distributor.claim(alice.address, first.entitlements[a], first.proof(a)))

    second = Tree(depth, {a: 234_567_890 * 10**12, b: 198_765_432 * 10**12}, filler)
    gas["anchor"] = send(w3, anchorer, distributor.anchor(2, second.root, rng.randbytes(32), 2 * 10**6 * TOKEN))
    w3.provider.make_request("evm_increaseTime", [CHALLENGE_PERIOD])
    w3.provider.make_request("evm_mine", [])
    gas["later_claim"] = send(w3, alice, distributor.claim(alice.address, second.entitlements[a], second.proof(a)))
    return gas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 16, 20], help="exponents k of the tree sizes 2^k (default 4 10 16 20)")
    parser.add_argument("--seed", type=int, default=20, help="seed of the random filler leaves and roots")
    parser.add_argument("--json", help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    results: dict[int, dict[str, int]] = {}
    started = time.monotonic()
    with start_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        for depth in args.sizes:
            results[depth] = measure(w3, node.accounts, depth, rng)

    compiler = load_artifact("RewardDistributor")["compiler"]
    print(f"RewardDistributor gas on anvil ({platform.machine()}, solc {compiler.get('version', compiler)}); receipt gasUsed")
    header = f"{'leaves':>8} {'proof':>5} {'anchor':>9} {'1st anchor':>10} {'very 1st claim':>14} {'first claim':>11} {'later claim':>11}"
    print(header)
    print("-" * len(header))
    for depth, gas in results.items():
        print(
            f"{'2^' + str(depth):>8} {depth:>5} {gas['anchor']:>9,} {gas['anchor_first']:>10,} "
            f"{gas['very_first_claim']:>14,} {gas['first_claim']:>11,} {gas['later_claim']:>11,}"
        )
    print(f"targets: anchor <= {TARGETS['anchor']:,}, first claim <= {TARGETS['first_claim']:,}, later claim <= {TARGETS['later_claim']:,}")
    print(f"took {time.monotonic() - started:.1f} s")

    missed = [
        f"{name} at 2^{depth}: {gas[name]:,} > {target:,}"
        for depth, gas in results.items()
        for name, target in TARGETS.items()
        if gas[name] > target
    ]
    for line in missed:
        print(f"missed target: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({str(depth): gas for depth, gas in results.items()}, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
