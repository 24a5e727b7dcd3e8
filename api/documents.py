"""Response models of the proof and tree documents, so the OpenAPI schema describes them.

Field names follow the documents' own JSON formats (`leafEncoding`, `chainId`, `treeIndex`),
which `ledger verify` and `@openzeppelin/merkle-tree` read, so they are camelCase on purpose.
"""

from typing import Literal

from pydantic import BaseModel


class ProofDocument(BaseModel):
    """A contribution proof in the format `ledger verify` reads.

    `root`, `leafEncoding`, `value` and `proof` are the four arguments of
    `StandardMerkleTree.verify` in `@openzeppelin/merkle-tree`.
    """

    kind: Literal["contribution", "claim"]
    epoch: int
    root: str
    leafEncoding: list[str]
    value: list[str]
    """Leaf values as strings: 0x hex for bytes32, checksummed addresses, decimal integers."""
    proof: list[str]
    distributor: str | None = None
    """RewardDistributor whose `verifyContribution` view checks the proof, when a chain is set."""
    chainId: int | None = None


class TreeValue(BaseModel):
    """One leaf of a tree dump: its values and its index in `tree`."""

    value: list[str]
    treeIndex: int


class TreeDump(BaseModel):
    """A Merkle tree in the `standard-v1` dump format that `StandardMerkleTree.load` reads."""

    format: Literal["standard-v1"]
    leafEncoding: list[str]
    tree: list[str]
    """Every node, root first, as 0x hex."""
    values: list[TreeValue]
