"""Merkle trees stored in PostgreSQL: written once per epoch, read back proof by proof.

A tree is stored as its nodes, 32 bytes each in the `@openzeppelin/merkle-tree` layout (node 0
is the root, node i has children 2i + 1 and 2i + 2), in rows of NODES_PER_CHUNK consecutive
nodes. Each leaf row keeps the leaf's key, the index of its node and its `abi.encode` value.
A proof is the sibling of the leaf's node and the siblings of its ancestors, about log2(n)
nodes read with substring(), and the `standard-v1` dump is rendered from the nodes and the
leaf rows. Storage is O(n) bytes per tree, where a proof per leaf would be O(n log n).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection as PsycopgConnection
from sqlalchemy import select, text
from sqlalchemy.orm import Session as DbSession

from ledger.merkle import CLAIM_LEAF_ENCODING, CONTRIBUTION_LEAF_ENCODING, DUMP_FORMAT, core
from ledger.merkle.abi import to_checksum_addresses
from ledger.merkle.errors import MerkleInvariantError
from ledger.models.epoch import MerkleLeaf, MerkleTreeRecord

CLAIMS = "claims"
CONTRIBUTIONS = "contributions"

#: ABI types of the leaf values of each kind of tree.
LEAF_ENCODINGS: dict[str, tuple[str, ...]] = {
    CLAIMS: CLAIM_LEAF_ENCODING,
    CONTRIBUTIONS: CONTRIBUTION_LEAF_ENCODING,
}

#: Root anchored for a tree with no leaves.
EMPTY_ROOT = bytes(32)

#: Nodes per row of merkle_node_chunks: 2 MiB rows, about 128 rows for 3 million leaves.
NODES_PER_CHUNK = 65_536

#: Leaf rows sent per COPY write and read per fetch when rendering a dump.
BATCH_ROWS = 100_000


#: work_mem for the rest of a closing or building transaction: each sort and hash of one
#: row per contributor or per session may use this much before spilling to temporary files.
#: PostgreSQL's default of 4 MB spills at a few tens of thousands of contributors.
BULK_WORK_MEM = "256MB"


def raw_connection(db: DbSession) -> PsycopgConnection:
    """Return the psycopg connection of the session's transaction, for COPY and binary fetches."""
    return db.connection().connection.driver_connection


def use_bulk_work_mem(db: DbSession) -> None:
    """Set the planner up for whole-epoch queries until the session's transaction ends.

    work_mem becomes BULK_WORK_MEM, and cursor_tuple_fraction 1 makes fetch_columns' cursors
    be planned for all their rows: with the default of 0.1 PostgreSQL read a million sessions
    through their primary key index, in random heap order, instead of scanning and sorting.
    """
    db.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))
    db.execute(text("SET LOCAL cursor_tuple_fraction = 1"))


def fetch_columns(db: DbSession, query: str, parameters: dict[str, Any]) -> list[list[Any]]:
    """Run `query` (psycopg placeholders) and return its result as one list per column.

    Rows arrive in binary format through a server-side cursor, BATCH_ROWS at a time, so bytea
    values need no hex decoding and only one batch of row tuples exists at once.
    """
    columns: list[list[Any]] | None = None
    with raw_connection(db).cursor(name="ledger_bulk_fetch", binary=True) as cursor:
        cursor.execute(query, parameters)
        while rows := cursor.fetchmany(BATCH_ROWS):
            if columns is None:
                columns = [[] for _ in rows[0]]
            for column, values in zip(columns, zip(*rows)):
                column.extend(values)
    return columns or []


def store_tree(db: DbSession, epoch: int, kind: str, keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """Build the tree of the ABI-encoded leaf `values` and store it with one row per leaf.

    `keys[i]` identifies value i: an account's 20 bytes or a session UUID's 16 bytes. The leaf
    hash is keccak256(keccak256(value)), and leaves are sorted by hash as StandardMerkleTree
    sorts them. So the root equals that of the same values built with `@openzeppelin/merkle-tree`.
    Nodes and leaves go in with COPY in the session's transaction.

    Returns:
        The root, or EMPTY_ROOT (and nothing stored) when there are no values.
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys for {len(values)} leaf values")
    if not values:
        return EMPTY_ROOT

    nodes, tree_indices = core.make_sorted_tree(core.hash_encoded_leaves(values))
    db.add(MerkleTreeRecord(epoch=epoch, kind=kind, root=nodes[0], leaf_count=len(values)))
    db.flush()

    with raw_connection(db).cursor() as cursor:
        with cursor.copy("COPY merkle_node_chunks (epoch, kind, chunk, nodes) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "varchar", "int4", "bytea"])
            for chunk, start in enumerate(range(0, len(nodes), NODES_PER_CHUNK)):
                copy.write_row((epoch, kind, chunk, b"".join(nodes[start : start + NODES_PER_CHUNK])))
        root = nodes[0]
        del nodes

        with cursor.copy(
            "COPY merkle_leaves (epoch, kind, key, tree_index, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "varchar", "bytea", "int4", "bytea"])
            write_row = copy.write_row
            for key, tree_index, value in zip(keys, tree_indices, values):
                write_row((epoch, kind, key, tree_index, value))
    return root


@dataclass(frozen=True)
class StoredLeaf:
    """A leaf read from storage, with its proof as 0x hex nodes from the leaf's sibling up."""

    epoch: int
    kind: str
    root: bytes
    value: list[str]
    """Canonical JSON form of the leaf value, as in a tree dump."""
    proof: list[str]


def claim_key(account: str) -> bytes:
    """Return the leaf key of a checksummed (or any-case) account: its 20 bytes."""
    return bytes.fromhex(account[2:])


def contribution_key(session_id: uuid.UUID) -> bytes:
    """Return the leaf key of a session: its UUID's 16 bytes."""
    return session_id.bytes


def read_leaf(db: DbSession, epoch: int, kind: str, key: bytes) -> StoredLeaf | None:
    """Return a stored leaf with its proof, or None when the tree has no leaf under `key`.

    The proof is checked against the stored root before it is returned.

    Raises:
        MerkleInvariantError: when the stored nodes do not lead from the leaf to the root.
    """
    row = db.execute(
        select(MerkleLeaf.tree_index, MerkleLeaf.value, MerkleTreeRecord.root, MerkleTreeRecord.leaf_count)
        .join(MerkleTreeRecord, (MerkleTreeRecord.epoch == MerkleLeaf.epoch) & (MerkleTreeRecord.kind == MerkleLeaf.kind))
        .where(MerkleLeaf.epoch == epoch, MerkleLeaf.kind == kind, MerkleLeaf.key == key)
    ).one_or_none()
    if row is None:
        return None
    proof = read_nodes(db, epoch, kind, core.proof_indices(2 * row.leaf_count - 1, row.tree_index))
    encoded = bytes(row.value)
    if core.process_proof(core.hash_encoded_leaves([encoded])[0], proof) != row.root:
        raise MerkleInvariantError(
            f"the stored proof of {kind} leaf 0x{key.hex()} in epoch {epoch} does not lead to the root"
        )
    return StoredLeaf(
        epoch=epoch,
        kind=kind,
        root=bytes(row.root),
        value=decode_values(kind, [encoded])[0],
        proof=["0x" + node.hex() for node in proof],
    )


_READ_NODES_SQL = text(
    """
    SELECT substring(c.nodes FROM (t.node % :per_chunk) * 32 + 1 FOR 32)
    FROM unnest(CAST(:nodes AS integer[])) WITH ORDINALITY AS t(node, position)
    JOIN merkle_node_chunks c
      ON c.epoch = :epoch AND c.kind = :kind AND c.chunk = t.node / :per_chunk
    ORDER BY t.position
    """
)


def read_nodes(db: DbSession, epoch: int, kind: str, indices: Sequence[int]) -> list[bytes]:
    """Return the stored nodes at `indices`, in the same order."""
    if not indices:
        return []
    nodes = [
        bytes(node)
        for node in db.scalars(
            _READ_NODES_SQL,
            {"nodes": list(indices), "per_chunk": NODES_PER_CHUNK, "epoch": epoch, "kind": kind},
        )
    ]
    if len(nodes) != len(indices):
        raise MerkleInvariantError(f"the {kind} tree of epoch {epoch} is missing nodes in storage")
    return nodes


def decode_values(kind: str, encoded_values: Sequence[bytes]) -> list[list[str]]:
    """Return the canonical JSON form of ABI-encoded leaf values of a `kind` tree.

    Every type of the two leaf encodings takes one 32-byte word: addresses come back in
    checksum case, integers as decimal strings and bytes32 as 0x hex.
    """
    columns: list[list[str]] = []
    for position, type_name in enumerate(LEAF_ENCODINGS[kind]):
        start = 32 * position
        words = [value[start : start + 32] for value in encoded_values]
        if type_name == "address":
            columns.append(to_checksum_addresses(["0x" + word[12:].hex() for word in words]))
        elif type_name.startswith("uint"):
            columns.append([str(int.from_bytes(word, "big")) for word in words])
        else:
            columns.append(["0x" + word.hex() for word in words])
    return [list(value) for value in zip(*columns)]


def tree_record(db: DbSession, epoch: int, kind: str) -> MerkleTreeRecord | None:
    """Return the stored tree of `kind` of an epoch, or None when it has none."""
    return db.get(MerkleTreeRecord, (epoch, kind))


def iter_dump_json(db: DbSession, epoch: int, kind: str) -> Iterator[str]:
    """Yield the `standard-v1` dump of a stored tree as JSON text, in pieces.

    `StandardMerkleTree.load` of `@openzeppelin/merkle-tree` accepts the joined text. Values
    are listed by leaf key. Nothing is yielded when the epoch has no tree of this kind.
    """
    if tree_record(db, epoch, kind) is None:
        return
    yield '{"format":' + json.dumps(DUMP_FORMAT) + ',"leafEncoding":' + json.dumps(list(LEAF_ENCODINGS[kind]))
    yield ',"tree":['
    chunks = db.scalars(
        text("SELECT nodes FROM merkle_node_chunks WHERE epoch = :epoch AND kind = :kind ORDER BY chunk"),
        {"epoch": epoch, "kind": kind},
    )
    for number, chunk in enumerate(chunks):
        digits = bytes(chunk).hex()
        nodes = [digits[start : start + 64] for start in range(0, len(digits), 64)]
        yield ("," if number else "") + '"0x' + '","0x'.join(nodes) + '"'
    yield '],"values":['

    result = db.execute(
        text("SELECT tree_index, value FROM merkle_leaves WHERE epoch = :epoch AND kind = :kind ORDER BY key"),
        {"epoch": epoch, "kind": kind},
        execution_options={"yield_per": BATCH_ROWS},
    )
    first = True
    for rows in result.partitions():
        values = decode_values(kind, [bytes(row.value) for row in rows])
        # Every canonical item of these leaf types is hex or decimal digits, so it needs no
        # JSON escaping.
        entries = [
            '{"value":["' + '","'.join(value) + '"],"treeIndex":' + str(row.tree_index) + "}"
            for value, row in zip(values, rows)
        ]
        yield ("" if first else ",") + ",".join(entries)
        first = False
    yield "]}"


def tree_dump(db: DbSession, epoch: int, kind: str) -> dict[str, Any] | None:
    """Return the `standard-v1` dump of a stored tree as parsed JSON, or None if it has none."""
    text_parts = list(iter_dump_json(db, epoch, kind))
    return json.loads("".join(text_parts)) if text_parts else None

