"""Exceptions raised by the Merkle tree package.

Caller mistakes derive from `ValueError`, so code that already handles bad input keeps working.
A broken invariant means a bug in this package or memory corruption, never bad input:

    MerkleTreeError
    ├── MerkleInputError (ValueError)       the caller passed something invalid
    │   ├── InvalidLeafEncoding             unknown or unsupported ABI type in a leaf encoding
    │   ├── InvalidLeafValue                a value does not match its ABI type
    │   ├── InvalidMerkleNode               a root or proof node is not 32 bytes of 0x-hex
    │   ├── EmptyTree                       a tree was requested for zero leaves
    │   ├── LeafNotFound                    a value is not a leaf of the tree
    │   ├── LeafIndexOutOfRange (IndexError)
    │   ├── InvalidDump                     a tree dump is malformed or was tampered with
    │   └── InvalidProofFile                a proof JSON document is malformed
    └── MerkleInvariantError                the package built or loaded an inconsistent tree
"""


class MerkleTreeError(Exception):
    """Base class of every error raised by `ledger.merkle`."""


class MerkleInputError(MerkleTreeError, ValueError):
    """An argument given by the caller is invalid."""


class InvalidLeafEncoding(MerkleInputError):
    """A leaf encoding names an ABI type that is unknown or not supported."""


class InvalidLeafValue(MerkleInputError):
    """A leaf value does not match the ABI type of its position in the leaf encoding."""


class InvalidMerkleNode(MerkleInputError):
    """A root or proof node is not a 0x-prefixed hex string (or bytes) of exactly 32 bytes."""


class EmptyTree(MerkleInputError):
    """A tree was requested for zero leaves. A Merkle tree needs at least one leaf."""


class LeafNotFound(MerkleInputError):
    """A value was looked up in a tree that does not contain it."""


class LeafIndexOutOfRange(MerkleInputError, IndexError):
    """A value index is outside `0 <= index < len(tree)`."""


class InvalidDump(MerkleInputError):
    """A tree dump does not follow the `standard-v1` format or does not hash to its own nodes."""


class InvalidProofFile(MerkleInputError):
    """A contribution or claim proof document is malformed."""


class MerkleInvariantError(MerkleTreeError):
    """The package produced an inconsistent tree or proof. This is a bug, not a caller error."""
