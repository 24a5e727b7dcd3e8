"""StandardMerkleTree: the tree format of `@openzeppelin/merkle-tree` 1.0.8, in Python.

A leaf is keccak256(keccak256(abi.encode(value))) for a value given with its ABI types (the
leaf encoding). Leaf hashes are sorted in ascending order before the tree is built, which is the
JavaScript library's default (`sortLeaves: true`). Roots, proofs and `dump()` output are
byte-identical to what `StandardMerkleTree.of(values, leafEncoding)` produces in JavaScript when
it is given the values in their canonical JSON form (see `ledger.merkle.abi`).

Proofs and the root are 0x-prefixed lower-case hex strings, as in the JavaScript library.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ledger.merkle import core
from ledger.merkle.abi import LeafEncoding, leaf_encoding_of
from ledger.merkle.errors import (
    EmptyTree,
    InvalidDump,
    InvalidLeafEncoding,
    InvalidLeafValue,
    InvalidMerkleNode,
    LeafIndexOutOfRange,
    LeafNotFound,
    MerkleInvariantError,
)

#: The only dump format version that the JavaScript library 1.0.8 writes and loads.
DUMP_FORMAT = "standard-v1"

_DUMP_KEYS = frozenset({"format", "leafEncoding", "tree", "values"})
_DUMP_VALUE_KEYS = frozenset({"value", "treeIndex"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_node(node: str | bytes, label: str = "node") -> bytes:
    """Return the 32 bytes of a root or proof node given as bytes or as 0x-prefixed hex.

    Hex digits may be in either case. Raise InvalidMerkleNode for anything else.
    """
    if isinstance(node, (bytes, bytearray, memoryview)):
        raw = bytes(node)
        if len(raw) != 32:
            raise InvalidMerkleNode(f"{label} must be 32 bytes, got {len(raw)} bytes")
        return raw
    if (
        isinstance(node, str)
        and len(node) == 66
        and node.startswith("0x")
        and _HEX_DIGITS.issuperset(node[2:])
    ):
        return bytes.fromhex(node[2:])
    raise InvalidMerkleNode(f"{label} must be 0x followed by 64 hex digits, got {node!r}")


def to_hex(node: bytes) -> str:
    """Return `node` as 0x-prefixed lower-case hex, the form the JavaScript library writes."""
    return "0x" + node.hex()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk tree operation.

    Building a tree or its proofs allocates one list per value or node and creates no reference
    cycles, yet every few hundred allocations would start a collection. For 100,000 claims
    leaves, pausing it cut `claims_tree()` plus `proofs()` from 1.35 s to 0.99 s
    (bench/merkle_tree.py on a 2-core AMD EPYC virtual machine). Reference counting still frees
    memory as usual. The collector is re-enabled only if it was enabled on entry.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class StandardMerkleTree:
    """A Merkle tree of ABI-encoded values. Build one with `of()` or `load()`.

    Values keep their insertion order, so `proof(i)` proves the i-th value given to `of()`.
    No method modifies the tree after construction.
    """

    __slots__ = ("_encoding", "_nodes", "_values", "_tree_indices", "_hex_nodes", "_lookup")

    def __init__(
        self,
        encoding: LeafEncoding,
        nodes: list[bytes],
        values: list[list[Any]],
        tree_indices: list[int],
    ) -> None:
        """Wrap an already consistent tree. Callers use `of()` or `load()` instead."""
        self._encoding = encoding
        self._nodes = nodes
        self._values = values
        self._tree_indices = tree_indices
        self._hex_nodes: list[str] | None = None
        self._lookup: dict[bytes, int] | None = None

    # Construction

    @classmethod
    def of(
        cls, values: Iterable[Sequence[Any]], leaf_encoding: Sequence[str]
    ) -> StandardMerkleTree:
        """Build a tree of `values`, each a sequence with one item per ABI type.

        Integers must be Python ints here (not bool, float or str), addresses strings in any
        case (mixed case must be a valid EIP-55 checksum), and bytesN values bytes or 0x-hex.
        Raise InvalidLeafEncoding, InvalidLeafValue (naming the value index) or EmptyTree.
        """
        encoding = leaf_encoding_of(leaf_encoding)
        values = list(values)
        if not values:
            raise EmptyTree("cannot build a Merkle tree of zero values")

        with cyclic_gc_paused():
            canonical_values, hashes = encoding.canonical_and_hash_many(values, strict=True)
            nodes, tree_indices = core.make_sorted_tree(hashes)
        return cls(encoding, nodes, canonical_values, tree_indices)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Rebuild a tree from a `dump()` (as parsed JSON) after checking every hash in it.

        Accept what `StandardMerkleTree.load` in JavaScript accepts from a dump it wrote, and
        also require one value per leaf with distinct tree indices. Values that are valid but not
        canonical (a lower-case address, an int for a uint) are converted, so `dump()` then
        returns the canonical form. Raise InvalidDump, naming the first inconsistency.
        """
        if not isinstance(data, Mapping):
            raise InvalidDump(f"a tree dump must be a JSON object, got {type(data).__name__}")
        unknown_keys = sorted(set(data) - _DUMP_KEYS)
        if unknown_keys:
            raise InvalidDump(f"unknown keys in the tree dump: {unknown_keys}")
        missing_keys = sorted(_DUMP_KEYS - set(data))
        if missing_keys:
            raise InvalidDump(f"missing keys in the tree dump: {missing_keys}")
        if data["format"] != DUMP_FORMAT:
            raise InvalidDump(f"unknown dump format {data['format']!r}: expected {DUMP_FORMAT!r}")

        try:
            encoding = leaf_encoding_of(data["leafEncoding"])
        except InvalidLeafEncoding as error:
            raise InvalidDump(f"invalid leafEncoding: {error}") from None

        with cyclic_gc_paused():
            nodes = _load_nodes(data["tree"])
            values, tree_indices, leaf_hashes = _load_values(data["values"], encoding, len(nodes))

        for value_index, (tree_index, leaf_hash) in enumerate(zip(tree_indices, leaf_hashes)):
            if nodes[tree_index] != leaf_hash:
                raise InvalidDump(
                    f"values[{value_index}] does not hash to tree[{tree_index}]: the dump is "
                    "corrupt, was modified, or has the wrong leafEncoding"
                )
        invalid_index = core.find_invalid_node(nodes)
        if invalid_index is not None:
            raise InvalidDump(
                f"tree[{invalid_index}] is not the hash of its two children: the dump is corrupt "
                "or was modified"
            )
        return cls(encoding, nodes, values, tree_indices)

    # Reading

    @property
    def root(self) -> str:
        """Root hash as 0x-prefixed lower-case hex."""
        return to_hex(self._nodes[0])

    @property
    def root_bytes(self) -> bytes:
        """Root hash as 32 bytes, the form a `bytes32` contract argument takes."""
        return self._nodes[0]

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        """ABI types of the positions of every value, as given when the tree was built."""
        return self._encoding.types

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return (
            f"StandardMerkleTree(leaf_encoding={list(self.leaf_encoding)!r}, "
            f"values={len(self)}, root={self.root!r})"
        )

    def at(self, index: int) -> list[Any]:
        """Return a copy of value `index` in canonical JSON form."""
        value = self._values[self._check_index(index)]
        return list(value) if self._encoding.flat else copy.deepcopy(value)

    def entries(self) -> Iterator[tuple[int, list[Any]]]:
        """Yield `(index, value)` for every value in insertion order, values in canonical form."""
        for index in range(len(self._values)):
            yield index, self.at(index)

    def column(self, position: int) -> list[Any]:
        """Return item `position` of every value in canonical form, in value order."""
        if not 0 <= position < len(self._encoding.types):
            raise LeafIndexOutOfRange(
                f"position {position} is out of range for the leaf encoding "
                f"{list(self._encoding.types)}"
            )
        items = [value[position] for value in self._values]
        return items if self._encoding.flat else copy.deepcopy(items)

    def tree_index(self, index: int) -> int:
        """Return the node index of the leaf of value `index`."""
        return self._tree_indices[self._check_index(index)]

    def leaf_hash(self, value: Sequence[Any]) -> str:
        """Return the leaf hash of `value` under this tree's leaf encoding, as hex.

        The value does not have to be in the tree. Integers may be ints or decimal strings.
        """
        return to_hex(self._encoding.leaf_hash(value))

    def index_of(self, value: Sequence[Any]) -> int:
        """Return the index of `value` among the tree's values. Raise LeafNotFound if absent.

        For a value inserted several times, this returns the last index, like the JavaScript
        library's lookup.
        """
        if self._lookup is None:
            self._lookup = {
                self._nodes[tree_index]: value_index
                for value_index, tree_index in enumerate(self._tree_indices)
            }
        leaf_hash = self._encoding.leaf_hash(value)
        try:
            return self._lookup[leaf_hash]
        except KeyError:
            raise LeafNotFound(f"value {value!r} is not a leaf of this tree") from None

    # Proofs

    def proof(self, index: int) -> list[str]:
        """Return the proof of value `index` as hex nodes, from the leaf's sibling upward.

        Raise LeafIndexOutOfRange for an index outside `0 <= index < len(self)`.
        """
        tree_index = self._tree_indices[self._check_index(index)]
        proof = core.get_proof(self._nodes, tree_index)
        if core.process_proof(self._nodes[tree_index], proof) != self._nodes[0]:
            raise MerkleInvariantError(f"the proof of value {index} does not lead to the root")
        return [to_hex(node) for node in proof]

    def proofs(self) -> list[list[str]]:
        """Return the proofs of all values, `proofs()[i] == proof(i)`, in one pass.

        Unlike `proof()`, this does not re-hash each proof, because `of()` and `load()` have
        already checked every node of the tree.
        """
        with cyclic_gc_paused():
            node_proofs = core.get_all_proofs(self._hex())
            return [node_proofs[tree_index] for tree_index in self._tree_indices]

    @staticmethod
    def verify(
        root: str | bytes,
        leaf_encoding: Sequence[str] | LeafEncoding,
        value: Sequence[Any],
        proof: Sequence[str | bytes],
    ) -> bool:
        """Return whether `proof` proves `value` against `root`. Same as the module's `verify`."""
        return verify(root, leaf_encoding, value, proof)

    def verify_value(self, index: int, proof: Sequence[str | bytes]) -> bool:
        """Return whether `proof` proves value `index` against this tree's root."""
        return verify(self._nodes[0], self._encoding, self._values[self._check_index(index)], proof)

    # Output

    def dump(self) -> dict[str, Any]:
        """Return the `standard-v1` dump, equal to the JavaScript library's `tree.dump()`."""
        if self._encoding.flat:
            values = [list(value) for value in self._values]
        else:
            values = copy.deepcopy(self._values)
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(self._encoding.types),
            "tree": list(self._hex()),
            "values": [
                {"value": value, "treeIndex": tree_index}
                for value, tree_index in zip(values, self._tree_indices)
            ],
        }

    def render(self) -> str:
        """Draw the tree as text, one `index) hash` line per node."""
        return core.render_tree(self._nodes)

    # Helpers

    def _hex(self) -> list[str]:
        if self._hex_nodes is None:
            self._hex_nodes = ["0x" + node.hex() for node in self._nodes]
        return self._hex_nodes

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise LeafIndexOutOfRange(f"a value index must be an int, got {index!r}")
        if not 0 <= index < len(self._values):
            raise LeafIndexOutOfRange(
                f"value index {index} is out of range for a tree of {len(self._values)} values"
            )
        return index


def verify(
    root: str | bytes,
    leaf_encoding: Sequence[str] | LeafEncoding,
    value: Sequence[Any],
    proof: Sequence[str | bytes],
) -> bool:
    """Return whether `proof` proves `value` against `root`, as `StandardMerkleTree.verify` does.

    Nodes may be hex or bytes and integers ints or decimal strings. A well-formed proof that
    does not match returns False. Malformed input raises InvalidMerkleNode, InvalidLeafEncoding
    or InvalidLeafValue.
    """
    expected_root = parse_node(root, "the root")
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        raise InvalidMerkleNode(f"a proof must be a list of nodes, got {type(proof).__name__}")
    siblings = [parse_node(node, f"proof[{position}]") for position, node in enumerate(proof)]
    leaf = leaf_encoding_of(leaf_encoding).leaf_hash(value)
    return core.process_proof(leaf, siblings) == expected_root


def _load_nodes(tree: Any) -> list[bytes]:
    if not isinstance(tree, list):
        raise InvalidDump(f"tree must be a list of hex nodes, got {type(tree).__name__}")
    if not tree:
        raise InvalidDump("tree is empty: a dump has at least one node")
    try:
        return [parse_node(node, f"tree[{index}]") for index, node in enumerate(tree)]
    except InvalidMerkleNode as error:
        raise InvalidDump(str(error)) from None


def _load_values(
    entries: Any, encoding: LeafEncoding, tree_size: int
) -> tuple[list[list[Any]], list[int], list[bytes]]:
    if not isinstance(entries, list):
        raise InvalidDump(f"values must be a list, got {type(entries).__name__}")
    leaf_count = (tree_size + 1) // 2
    if len(entries) != leaf_count:
        raise InvalidDump(
            f"a tree of {tree_size} nodes has {leaf_count} leaves, but the dump has "
            f"{len(entries)} values"
        )

    tree_indices: list[int] = []
    seen_tree_indices: set[int] = set()
    for value_index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) != _DUMP_VALUE_KEYS:
            raise InvalidDump(
                f"values[{value_index}] must be an object with exactly the keys "
                f"'value' and 'treeIndex', got {entry!r}"
            )
        tree_index = entry["treeIndex"]
        if isinstance(tree_index, bool) or not isinstance(tree_index, int):
            raise InvalidDump(f"values[{value_index}].treeIndex must be an int, got {tree_index!r}")
        if not core.is_leaf_index(tree_size, tree_index):
            raise InvalidDump(
                f"values[{value_index}].treeIndex {tree_index} is not a leaf of a tree of "
                f"{tree_size} nodes"
            )
        if tree_index in seen_tree_indices:
            raise InvalidDump(f"values[{value_index}].treeIndex {tree_index} is used twice")
        seen_tree_indices.add(tree_index)
        tree_indices.append(tree_index)

    try:
        values, leaf_hashes = encoding.canonical_and_hash_many([entry["value"] for entry in entries])
    except InvalidLeafValue as error:
        raise InvalidDump(f"invalid value in the dump: {error}") from None
    return values, tree_indices, leaf_hashes
