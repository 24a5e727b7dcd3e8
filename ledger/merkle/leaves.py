"""The two trees the ledger anchors each epoch, and their leaf types.

Claims tree leaf: `(address account, uint256 cumulativeAmount)`, the total entitlement of an
account in token base units up to and including the epoch. Contributions tree leaf:
`(bytes32 sessionId, bytes32 contentHash, address contributor, uint256 points)`, one per scored
session of the epoch, with the session UUID's 16 bytes left-padded to 32.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ledger.merkle.errors import InvalidLeafValue
from ledger.merkle.standard import StandardMerkleTree

#: ABI types of a claims tree leaf: account, cumulative amount in token base units.
CLAIM_LEAF_ENCODING: tuple[str, ...] = ("address", "uint256")

#: ABI types of a contributions tree leaf: session id, content hash, contributor, points.
CONTRIBUTION_LEAF_ENCODING: tuple[str, ...] = ("bytes32", "bytes32", "address", "uint256")


def session_id_to_bytes32(session_id: uuid.UUID) -> bytes:
    """Return the UUID's 16 bytes left-padded with zeros to 32, the contributions tree form."""
    if not isinstance(session_id, uuid.UUID):
        raise InvalidLeafValue(f"a session id must be a uuid.UUID, got {type(session_id).__name__}")
    return bytes(16) + session_id.bytes


def claims_tree(entries: Iterable[tuple[str, int]]) -> StandardMerkleTree:
    """Build the claims tree of `(account, cumulative_amount)` entries.

    Each account may appear once, in any case. Raise InvalidLeafValue for an invalid or repeated
    account or an amount outside uint256, and EmptyTree when there are no entries.
    """
    tree = StandardMerkleTree.of(entries, CLAIM_LEAF_ENCODING)

    # The tree normalized every address to checksum case, so equal accounts compare equal.
    _check_unique(tree.column(0), "account", "a claims tree has one cumulative amount per account")
    return tree


def contributions_tree(entries: Iterable[Sequence[Any]]) -> StandardMerkleTree:
    """Build the contributions tree of `(session_id, content_hash, contributor, points)` entries.

    `session_id` is a uuid.UUID (converted with session_id_to_bytes32) or its 32-byte form,
    `content_hash` 32 bytes or 0x-hex. Raise InvalidLeafValue for an invalid item or a repeated
    session id, and EmptyTree when there are no entries.
    """
    values = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, (list, tuple)) or len(entry) != len(CONTRIBUTION_LEAF_ENCODING):
            raise InvalidLeafValue(
                f"values[{index}]: a contribution is (session_id, content_hash, contributor, "
                f"points), got {entry!r}"
            )
        session_id = entry[0]
        if isinstance(session_id, uuid.UUID):
            session_id = session_id_to_bytes32(session_id)
        values.append((session_id, *entry[1:]))
    tree = StandardMerkleTree.of(values, CONTRIBUTION_LEAF_ENCODING)

    _check_unique(tree.column(0), "session id", "each session is credited once")
    return tree


def _check_unique(items: list[str], name: str, reason: str) -> None:
    if len(set(items)) == len(items):
        return
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        if item in first_index:
            raise InvalidLeafValue(
                f"{name} {item} appears at indices {first_index[item]} and {index}: {reason}"
            )
        first_index[item] = index
