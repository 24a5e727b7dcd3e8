"""Benchmark a claims tree with all its proofs: ledger.merkle against @openzeppelin/merkle-tree.

Builds the tree of N random (address, uint256) leaves and every proof in Python. Unless
--skip-peer is given, it then sends the same leaves to the JavaScript library in node
(tests/merkle/oz_tree.mjs), checks that roots and proofs are identical, and prints the times
and the speed ratio. JavaScript times are measured inside node and exclude JSON transfer.

    .venv/bin/python bench/merkle_tree.py --leaves 100000
    .venv/bin/python bench/merkle_tree.py --leaves 10000 --skip-peer

Exits with status 1 when the two implementations disagree.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from eth_utils import to_checksum_address

from ledger.merkle import CLAIM_LEAF_ENCODING, claims_tree

OZ_SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "merkle" / "oz_tree.mjs"


def random_claims(count: int, seed: int) -> list[tuple[str, int]]:
    """Return `count` distinct accounts with amounts, a tenth of them sharing one amount."""
    rng = random.Random(seed)
    accounts: set[bytes] = set()
    while len(accounts) < count:
        accounts.add(rng.randbytes(20))
    entries = []
    for index, raw in enumerate(sorted(accounts)):
        amount = 10**18 if index % 10 == 0 else rng.randrange(2**128)
        entries.append((to_checksum_address(raw), amount))
    rng.shuffle(entries)
    return entries


def run_python(entries: list[tuple[str, int]]) -> tuple[str, list[list[str]], dict[str, float]]:
    started = time.perf_counter()
    tree = claims_tree(entries)
    built = time.perf_counter()
    proofs = tree.proofs()
    finished = time.perf_counter()
    timings = {"build": built - started, "proofs": finished - built, "total": finished - started}
    return tree.root, proofs, timings


def run_peer(entries: list[tuple[str, int]]) -> tuple[str, list[list[str]], dict[str, float]]:
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: install Node.js 20 and run `npm ci`, or pass --skip-peer")
    payload = {
        "leafEncoding": list(CLAIM_LEAF_ENCODING),
        "values": [[account, str(amount)] for account, amount in entries],
    }
    started = time.perf_counter()
    completed = subprocess.run(
        [node, str(OZ_SCRIPT), "build"],
        input=json.dumps(payload).encode(),
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"oz_tree.mjs failed: {completed.stderr.decode(errors='replace')}")
    output = json.loads(completed.stdout)
    build = output["timings"]["buildMs"] / 1000
    proofs = output["timings"]["proofsMs"] / 1000
    timings = {"build": build, "proofs": proofs, "total": build + proofs, "wall": wall}
    return output["root"], output["proofs"], timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--leaves", type=int, default=100_000, help="number of (address, uint256) leaves"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random leaves")
    parser.add_argument(
        "--skip-peer",
        action="store_true",
        help="time only the Python implementation, without node",
    )
    arguments = parser.parse_args()
    if arguments.leaves < 1:
        parser.error("--leaves must be at least 1")

    entries = random_claims(arguments.leaves, arguments.seed)
    print(f"claims tree of {arguments.leaves} leaves, all proofs")

    root, proofs, python_timings = run_python(entries)
    print(
        f"python      build {python_timings['build']:8.3f} s  proofs "
        f"{python_timings['proofs']:8.3f} s  total {python_timings['total']:8.3f} s"
    )
    print(f"root {root}")
    if arguments.skip_peer:
        return 0

    peer_root, peer_proofs, peer_timings = run_peer(entries)
    print(
        f"javascript  build {peer_timings['build']:8.3f} s  proofs "
        f"{peer_timings['proofs']:8.3f} s  total {peer_timings['total']:8.3f} s  "
        f"(node process {peer_timings['wall']:.3f} s with JSON input and output)"
    )

    if peer_root != root:
        print(f"MISMATCH: javascript root {peer_root}", file=sys.stderr)
        return 1
    mismatches = [index for index, proof in enumerate(proofs) if proof != peer_proofs[index]]
    if len(peer_proofs) != len(proofs) or mismatches:
        print(
            f"MISMATCH: {len(mismatches)} proofs differ (first at value {mismatches[:1]}), "
            f"{len(peer_proofs)} javascript proofs for {len(proofs)} values",
            file=sys.stderr,
        )
        return 1
    print("roots and all proofs are identical")
    ratio = peer_timings["total"] / python_timings["total"]
    print(f"speed ratio (javascript total / python total): {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
