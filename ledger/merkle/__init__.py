"""Merkle trees in the OpenZeppelin StandardMerkleTree format, and offline proof documents.

Roots, proofs and dumps are byte-identical to `@openzeppelin/merkle-tree` 1.0.8, so the
JavaScript library and `MerkleProof.sol` accept everything built here.
"""

from ledger.merkle.abi import LeafEncoding, standard_leaf_hash, to_checksum_address
from ledger.merkle.errors import (
    EmptyTree,
    InvalidDump,
    InvalidLeafEncoding,
    InvalidLeafValue,
    InvalidMerkleNode,
    InvalidProofFile,
    LeafIndexOutOfRange,
    LeafNotFound,
    MerkleInputError,
    MerkleInvariantError,
    MerkleTreeError,
)
from ledger.merkle.leaves import (
    CLAIM_LEAF_ENCODING,
    CONTRIBUTION_LEAF_ENCODING,
    claims_tree,
    contributions_tree,
    session_id_to_bytes32,
)
from ledger.merkle.proof_file import (
    ClaimProof,
    ContributionProof,
    ProofDocument,
    VerificationResult,
    load_proof_file,
    verify_proof_file,
)
from ledger.merkle.standard import DUMP_FORMAT, StandardMerkleTree, verify

__all__ = [
    "CLAIM_LEAF_ENCODING",
    "CONTRIBUTION_LEAF_ENCODING",
    "DUMP_FORMAT",
    "ClaimProof",
    "ContributionProof",
    "EmptyTree",
    "InvalidDump",
    "InvalidLeafEncoding",
    "InvalidLeafValue",
    "InvalidMerkleNode",
    "InvalidProofFile",
    "LeafEncoding",
    "LeafIndexOutOfRange",
    "LeafNotFound",
    "MerkleInputError",
    "MerkleInvariantError",
    "MerkleTreeError",
    "ProofDocument",
    "StandardMerkleTree",
    "VerificationResult",
    "claims_tree",
    "contributions_tree",
    "load_proof_file",
    "session_id_to_bytes32",
    "standard_leaf_hash",
    "to_checksum_address",
    "verify",
    "verify_proof_file",
]
