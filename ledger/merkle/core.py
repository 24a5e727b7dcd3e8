"""Pure functions over a Merkle tree stored as a flat list of 32-byte nodes.

The layout is the one `@openzeppelin/merkle-tree` 1.0.8 builds. A tree of n leaves is a list of
2n - 1 nodes, and node 0 is the root. Node i has the children 2i + 1 and 2i + 2. The k-th leaf
in the order given to `make_tree` is node 2n - 2 - k, so the leaves fill the end of the list in
reverse order. The tree is complete but not necessarily balanced, because leaves can sit on two
levels.

A parent is keccak256 of its two children concatenated smaller first, compared as big-endian
integers (sorted-pair hashing). `MerkleProof.sol` from OpenZeppelin Contracts hashes pairs the
same way, so a proof is a plain list of sibling hashes from the leaf up to the root.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import TypeVar

from sha3 import keccak_256

from ledger.merkle.errors import EmptyTree, InvalidMerkleNode, LeafIndexOutOfRange

NodeT = TypeVar("NodeT")


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Return keccak256 of the two nodes concatenated in ascending order."""
    return keccak_256(a + b if a <= b else b + a).digest()


def sibling_index(index: int) -> int:
    """Return the index of the node that shares a parent with node `index` (index > 0)."""
    return index + 1 if index % 2 else index - 1


def parent_index(index: int) -> int:
    """Return the index of the parent of node `index` (index > 0)."""
    return (index - 1) // 2


def is_leaf_index(tree_size: int, index: int) -> bool:
    """Return whether node `index` exists in a tree of `tree_size` nodes and has no children."""
    return 0 <= index < tree_size and 2 * index + 1 >= tree_size


def _check_node(node: object, label: str) -> None:
    if not isinstance(node, bytes) or len(node) != 32:
        raise InvalidMerkleNode(f"{label} must be 32 bytes, got {node!r}")


def make_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """Build the node list for `leaves`, which are placed in the given order.

    StandardMerkleTree sorts the leaf hashes before calling this. Raise EmptyTree for no leaves.
    """
    if len(leaves) == 0:
        raise EmptyTree("cannot build a Merkle tree of zero leaves")
    # One C-level pass over the leaves; the per-leaf check only runs to name a bad leaf.
    if set(map(type, leaves)) != {bytes} or set(map(len, leaves)) != {32}:
        for position, leaf in enumerate(leaves):
            _check_node(leaf, f"leaf {position}")

    leaf_count = len(leaves)
    tree: list[bytes] = [b""] * (leaf_count - 1)
    tree.extend(reversed(leaves))

    # Hash one level at a time: nodes 2**d - 1 to 2**(d + 1) - 2 form level d, and their
    # children are the contiguous run of nodes below, so each level is one comprehension over
    # child pairs. The last internal node (leaf_count - 2) may sit in the middle of its level.
    keccak = keccak_256
    last = leaf_count - 2
    while last >= 0:
        first = (1 << (last + 1).bit_length() - 1) - 1
        children = iter(tree[2 * first + 1 : 2 * last + 3])
        tree[first : last + 1] = [
            keccak(left + right if left <= right else right + left).digest()
            for left, right in zip(children, children)
        ]
        last = first - 1
    return tree


def make_sorted_tree(leaf_hashes: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """Build the tree of `leaf_hashes` sorted in ascending order, as StandardMerkleTree does.

    Returns the node list and, for each leaf hash in the given order, the index of its node.
    Equal hashes keep their given order, because sorted() is stable like
    Array.prototype.sort. Raise EmptyTree for no leaves.
    """
    order = sorted(range(len(leaf_hashes)), key=leaf_hashes.__getitem__)
    nodes = make_tree(list(map(leaf_hashes.__getitem__, order)))
    last_node = len(nodes) - 1
    tree_indices = [0] * len(leaf_hashes)
    # tree_indices[order[k]] = last_node - k, in one C-level pass.
    deque(map(tree_indices.__setitem__, order, range(last_node, last_node - len(order), -1)), maxlen=0)
    return nodes, tree_indices


def hash_encoded_leaves(encoded_values: Iterable[bytes]) -> list[bytes]:
    """Return keccak256(keccak256(v)) of each ABI-encoded value, the StandardMerkleTree leaf hash."""
    digest = keccak_256.digest
    return list(map(digest, map(keccak_256, map(digest, map(keccak_256, encoded_values)))))


def proof_indices(tree_size: int, index: int) -> list[int]:
    """Return the node indices of the proof of leaf `index`: its sibling, then upward."""
    if not is_leaf_index(tree_size, index):
        raise LeafIndexOutOfRange(f"node {index} is not a leaf of a tree of {tree_size} nodes")
    indices = []
    while index > 0:
        indices.append(sibling_index(index))
        index = parent_index(index)
    return indices


def get_proof(tree: Sequence[NodeT], index: int) -> list[NodeT]:
    """Return the sibling nodes from leaf `index` up to (not including) the root."""
    return [tree[node] for node in proof_indices(len(tree), index)]


def get_all_proofs(tree: Sequence[NodeT]) -> list[list[NodeT]]:
    """Return the proof of every node, indexed like `tree`, in one pass from the root down.

    The proof of a node is its sibling followed by the proof of its parent, so each list is
    built by one C-level concatenation instead of a walk to the root. The nodes may be bytes or
    hex strings: items are copied by reference. Every returned list is a distinct object.
    """
    proofs: list[list[NodeT]] = [[]]
    append = proofs.append
    # Node indices grow level by level, so a parent's proof always exists before its children's.
    for index in range(1, len(tree)):
        append([tree[index + 1 if index % 2 else index - 1]] + proofs[(index - 1) // 2])
    return proofs


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root that `proof` leads to from `leaf`."""
    _check_node(leaf, "the leaf")
    node = leaf
    for position, sibling in enumerate(proof):
        _check_node(sibling, f"proof node {position}")
        node = hash_pair(node, sibling)
    return node


def find_invalid_node(tree: Sequence[bytes]) -> int | None:
    """Return the index of a node that breaks the tree's structure, or None if there is none.

    A node is invalid when it is not 32 bytes, when it has a left child but no right child
    (an even-sized list), or when it differs from the hash of its two children. Nodes are
    checked from the end of the list towards the root, so when one internal node was replaced,
    that node is the one reported rather than its ancestors. An empty list has no root, so it
    reports index 0.
    """
    size = len(tree)
    if size == 0:
        return 0
    for index in range(size - 1, -1, -1):
        node = tree[index]
        if not isinstance(node, bytes) or len(node) != 32:
            return index
        left = 2 * index + 1
        right = left + 1
        if right >= size:
            if left < size:
                return index
        elif node != hash_pair(tree[left], tree[right]):
            return index
    return None


def is_valid_tree(tree: Sequence[bytes]) -> bool:
    """Return whether `tree` is a non-empty list of nodes that hash to each other."""
    return find_invalid_node(tree) is None


def render_tree(tree: Sequence[bytes]) -> str:
    """Draw the tree as indented text, one `index) 0xhash` line per node, root first."""
    if len(tree) == 0:
        raise EmptyTree("cannot render a Merkle tree of zero nodes")
    lines = []
    # Each stack entry is a node index and, per ancestor level, whether a sibling follows it.
    stack: list[tuple[int, tuple[bool, ...]]] = [(0, ())]
    while stack:
        index, has_next_sibling = stack.pop()
        indent = "".join("│  " if more else "   " for more in has_next_sibling[:-1])
        if not has_next_sibling:
            branch = ""
        elif has_next_sibling[-1]:
            branch = "├─ "
        else:
            branch = "└─ "
        lines.append(f"{indent}{branch}{index}) 0x{tree[index].hex()}")
        right = 2 * index + 2
        if right < len(tree):
            stack.append((right, has_next_sibling + (False,)))
            stack.append((right - 1, has_next_sibling + (True,)))
    return "\n".join(lines)
