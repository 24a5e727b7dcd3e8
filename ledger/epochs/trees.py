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
from itertools import repeat
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


def iter_batches(db: DbSession, query: str, parameters: dict[str, Any]) -> Iterator[list[tuple[Any, ...]]]:
    """Run `query` (psycopg placeholders) and yield its rows, BATCH_ROWS at a time.

    Rows arrive in binary format through a server-side cursor, so bytea values need no hex
    decoding and only one batch of row tuples exists at once.
    """
    with raw_connection(db).cursor(name="ledger_bulk_fetch", binary=True) as cursor:
        cursor.execute(query, parameters)
        while rows := cursor.fetchmany(BATCH_ROWS):
            yield rows


def fetch_columns(db: DbSession, query: str, parameters: dict[str, Any]) -> list[list[Any]]:
    """Run `query` (psycopg placeholders) and return its result as one list per column."""
    columns: list[list[Any]] = []
    for rows in iter_batches(db, query, parameters):
        if not columns:
            columns = [[] for _ in rows[0]]
        for column, values in zip(columns, zip(*rows)):
            column.extend(values)
    return columns


@dataclass
class TreeToStore:
    """A tree built from ABI-encoded leaf values, and what write_tree stores of it.

    `keys[i]` identifies value i: an account's 20 bytes or a session UUID's 16 bytes.
    """

    epoch: int
    kind: str
    keys: Sequence[bytes]
    values: Sequence[bytes]
    nodes: list[bytes]
    tree_indices: list[int]

    @property
    def root(self) -> bytes:
        """Root node, or EMPTY_ROOT for a tree without leaves."""
        return self.nodes[0] if self.nodes else EMPTY_ROOT


def build_tree(epoch: int, kind: str, keys: Sequence[bytes], values: Sequence[bytes]) -> TreeToStore:
    """Build the tree of the ABI-encoded leaf `values`, identified by `keys`.

    The leaf hash is keccak256(keccak256(value)), and leaves are sorted by hash as
    StandardMerkleTree sorts them. So the root equals that of the same values built with
    `@openzeppelin/merkle-tree`. No values give a tree without nodes.
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys for {len(values)} leaf values")
    if not values:
        return TreeToStore(epoch, kind, keys, values, [], [])
    nodes, tree_indices = core.make_sorted_tree(core.hash_encoded_leaves(values))
    return TreeToStore(epoch, kind, keys, values, nodes, tree_indices)


def write_tree(connection: PsycopgConnection, tree: TreeToStore) -> None:
    """Store a built tree: its merkle_trees row, its nodes and one row per leaf, with COPY.

    A tree without leaves stores nothing.
    """
    if not tree.nodes:
        return
    epoch, kind = tree.epoch, tree.kind
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO merkle_trees (epoch, kind, root, leaf_count) VALUES (%s, %s, %s, %s)",
            (epoch, kind, tree.root, len(tree.values)),
        )
        with cursor.copy("COPY merkle_node_chunks (epoch, kind, chunk, nodes) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "varchar", "int4", "bytea"])
            for chunk, start in enumerate(range(0, len(tree.nodes), NODES_PER_CHUNK)):
                copy.write_row((epoch, kind, chunk, b"".join(tree.nodes[start : start + NODES_PER_CHUNK])))

        # Copy.write() sends bytes as they are, so the data carries the format's header and
        # trailer (write_row would add them itself).
        with cursor.copy(
            "COPY merkle_leaves (epoch, kind, key, tree_index, value) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(_BINARY_COPY_HEADER)
            for start in range(0, len(tree.values), BATCH_ROWS):
                stop = start + BATCH_ROWS
                copy.write(
                    _binary_leaf_rows(
                        epoch, kind, tree.keys[start:stop], tree.tree_indices[start:stop], tree.values[start:stop]
                    )
                )
            copy.write(_BINARY_COPY_TRAILER)


#: Header and trailer of PostgreSQL's binary COPY format (no flags, no header extension).
_BINARY_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_COPY_TRAILER = b"\xff\xff"


def _binary_leaf_rows(
    epoch: int, kind: str, keys: Sequence[bytes], tree_indices: Sequence[int], values: Sequence[bytes]
) -> bytes:
    """Return merkle_leaves rows in PostgreSQL's binary COPY format, built by C-level joins.

    Each row is a field count, then each field as a 4-byte length and its bytes: epoch
    (int4), kind (varchar), key (bytea), tree_index (int4) and value (bytea). This replaces
    a Copy.write_row call per row, which cost about 1 us of interpreter time each.
    """
    kind_bytes = kind.encode("utf-8")
    prefix = (
        (5).to_bytes(2, "big")
        + (4).to_bytes(4, "big")
        + epoch.to_bytes(4, "big", signed=True)
        + len(kind_bytes).to_bytes(4, "big")
        + kind_bytes
    )
    return b"".join(
        map(
            b"".join,
            zip(
                repeat(prefix),
                _length_prefixes(keys),
                keys,
                repeat((4).to_bytes(4, "big")),
                map(int.to_bytes, tree_indices, repeat(4), repeat("big")),
                _length_prefixes(values),
                values,
            ),
        )
    )


def _length_prefixes(fields: Sequence[bytes]) -> Iterator[bytes]:
    """Yield the 4-byte length of each field, as one repeated object when all are equal."""
    lengths = set(map(len, fields))
    if len(lengths) == 1:
        return repeat(lengths.pop().to_bytes(4, "big"), len(fields))
    return (len(field).to_bytes(4, "big") for field in fields)


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
    return stored_leaf(db, epoch, kind, key, tree_index=row.tree_index, value=bytes(row.value), root=bytes(row.root), leaf_count=row.leaf_count)


def stored_leaf(
    db: DbSession, epoch: int, kind: str, key: bytes, *, tree_index: int, value: bytes, root: bytes, leaf_count: int
) -> StoredLeaf:
    """Read the proof of a leaf already fetched, check it against `root` and return the leaf.

    Raises:
        MerkleInvariantError: when the stored nodes do not lead from the leaf to the root.
    """
    indices = core.proof_indices(2 * leaf_count - 1, tree_index)
    proof = read_nodes(db, epoch, kind, indices)
    return checked_leaf(epoch, kind, key, value=value, root=root, proof=proof, expected_length=len(indices))


def checked_leaf(
    epoch: int, kind: str, key: bytes, *, value: bytes, root: bytes, proof: Sequence[bytes], expected_length: int
) -> StoredLeaf:
    """Check a leaf's stored proof against `root` and return the leaf in its JSON form.

    Raises:
        MerkleInvariantError: when nodes are missing or do not lead from the leaf to the root.
    """
    if len(proof) != expected_length:
        raise MerkleInvariantError(f"the {kind} tree of epoch {epoch} is missing nodes in storage")
    if core.process_proof(core.hash_encoded_leaves([value])[0], proof) != root:
        raise MerkleInvariantError(
            f"the stored proof of {kind} leaf 0x{key.hex()} in epoch {epoch} does not lead to the root"
        )
    return StoredLeaf(
        epoch=epoch,
        kind=kind,
        root=root,
        value=decode_values(kind, [value])[0],
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
    """Return the stored nodes at `indices`, in the same order; missing nodes are left out.

    `checked_leaf` raises MerkleInvariantError when the proof it receives is short.
    """
    if not indices:
        return []
    return [
        bytes(node)
        for node in db.scalars(
            _READ_NODES_SQL,
            {"nodes": list(indices), "per_chunk": NODES_PER_CHUNK, "epoch": epoch, "kind": kind},
        )
    ]


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

    batches = iter_batches(
        db,
        "SELECT tree_index, value FROM merkle_leaves WHERE epoch = %(epoch)s AND kind = %(kind)s ORDER BY key",
        {"epoch": epoch, "kind": kind},
    )
    for number, rows in enumerate(batches):
        tree_indices, encoded_values = zip(*rows)
        # Every canonical item of these leaf types is hex or decimal digits, so it needs no
        # JSON escaping.
        entries = [
            '{"value":["' + '","'.join(value) + '"],"treeIndex":' + str(tree_index) + "}"
            for value, tree_index in zip(decode_values(kind, encoded_values), tree_indices)
        ]
        yield ("," if number else "") + ",".join(entries)
    yield "]}"


def tree_dump(db: DbSession, epoch: int, kind: str) -> dict[str, Any] | None:
    """Return the `standard-v1` dump of a stored tree as parsed JSON, or None if it has none."""
    text_parts = list(iter_dump_json(db, epoch, kind))
    return json.loads("".join(text_parts)) if text_parts else None

