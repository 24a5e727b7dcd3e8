"""Offline proof documents: one contribution or claim with its Merkle proof, as JSON.

A contribution proof::

    {
      "kind": "contribution",
      "epoch": 3,
      "root": "0x<64 hex digits>",
      "leafEncoding": ["bytes32", "bytes32", "address", "uint256"],
      "value": ["0x<session id, 32 bytes>", "0x<content hash>", "0x<checksummed contributor>", "1500"],
      "proof": ["0x<64 hex digits>", ...],
      "distributor": "0x<checksummed RewardDistributor address>" or null,
      "chainId": 11155111 or null
    }

A claim proof has `"kind": "claim"`, `"leafEncoding": ["address", "uint256"]` and
`"value": [account, cumulative amount as a decimal string]`. Hex is written in lower case and
addresses in checksum case.

`root`, `leafEncoding`, `value` and `proof` are the four arguments of `StandardMerkleTree.verify`
in `@openzeppelin/merkle-tree`, so JavaScript checks a document with
`StandardMerkleTree.verify(doc.root, doc.leafEncoding, doc.value, doc.proof)`.
`verify_proof_file` checks the proof against the root written in the document. Whether that
root was anchored on chain for `epoch` is a separate check against the distributor contract.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ledger.merkle import core
from ledger.merkle.abi import leaf_encoding_of, to_checksum_address
from ledger.merkle.errors import (
    InvalidLeafValue,
    InvalidMerkleNode,
    InvalidProofFile,
    MerkleInputError,
)
from ledger.merkle.leaves import (
    CLAIM_LEAF_ENCODING,
    CONTRIBUTION_LEAF_ENCODING,
    session_id_to_bytes32,
)
from ledger.merkle.standard import StandardMerkleTree, parse_node, to_hex

_REQUIRED_KEYS = frozenset({"kind", "epoch", "root", "leafEncoding", "value", "proof"})
_OPTIONAL_KEYS = frozenset({"distributor", "chainId"})


def _check_epoch(epoch: Any) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InvalidProofFile(f"epoch must be a non-negative integer, got {epoch!r}")
    return epoch


def _check_chain_id(chain_id: Any) -> int | None:
    if chain_id is None:
        return None
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise InvalidProofFile(f"chainId must be a positive integer or null, got {chain_id!r}")
    return chain_id


def _check_distributor(distributor: Any) -> str | None:
    if distributor is None:
        return None
    try:
        return to_checksum_address(distributor)
    except InvalidLeafValue as error:
        raise InvalidProofFile(f"distributor: {error}") from None


def _check_proof(proof: Any) -> tuple[str, ...]:
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        raise InvalidProofFile(f"proof must be a list of hex nodes, got {type(proof).__name__}")
    try:
        return tuple(
            to_hex(parse_node(node, f"proof[{position}]")) for position, node in enumerate(proof)
        )
    except InvalidMerkleNode as error:
        raise InvalidProofFile(str(error)) from None


@dataclass(frozen=True, kw_only=True)
class _ProofDocument:
    """Fields shared by contribution and claim proofs. Values are validated on construction."""

    KIND: ClassVar[str]
    LEAF_ENCODING: ClassVar[tuple[str, ...]]

    #: Epoch whose tree contains the leaf.
    epoch: int
    #: Root of that tree, 0x-prefixed lower-case hex.
    root: str
    #: Sibling hashes from the leaf up to the root, 0x-prefixed lower-case hex.
    proof: tuple[str, ...] = field(default=())
    #: RewardDistributor contract that anchored the root, in checksum case, if known.
    distributor: str | None = None
    #: EIP-155 chain id of that contract, if known.
    chain_id: int | None = None

    def _normalize_common(self) -> None:
        object.__setattr__(self, "epoch", _check_epoch(self.epoch))
        try:
            object.__setattr__(self, "root", to_hex(parse_node(self.root, "root")))
        except InvalidMerkleNode as error:
            raise InvalidProofFile(str(error)) from None
        object.__setattr__(self, "proof", _check_proof(self.proof))
        object.__setattr__(self, "distributor", _check_distributor(self.distributor))
        object.__setattr__(self, "chain_id", _check_chain_id(self.chain_id))

    @property
    def value(self) -> list[Any]:
        """Leaf value in canonical JSON form, the `value` field of the document."""
        raise NotImplementedError

    @property
    def leaf_hash(self) -> str:
        """Leaf hash keccak256(keccak256(abi.encode(value))) as hex."""
        return to_hex(leaf_encoding_of(self.LEAF_ENCODING).leaf_hash(self.value))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document as a dict, keys in the documented order."""
        return {
            "kind": self.KIND,
            "epoch": self.epoch,
            "root": self.root,
            "leafEncoding": list(self.LEAF_ENCODING),
            "value": self.value,
            "proof": list(self.proof),
            "distributor": self.distributor,
            "chainId": self.chain_id,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the document as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def _common_fields(cls, document: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(document, Mapping):
            raise InvalidProofFile(
                f"a proof document must be a JSON object, got {type(document).__name__}"
            )
        missing_keys = sorted(_REQUIRED_KEYS - set(document))
        if missing_keys:
            raise InvalidProofFile(f"missing keys in the proof document: {missing_keys}")
        unknown_keys = sorted(set(document) - _REQUIRED_KEYS - _OPTIONAL_KEYS)
        if unknown_keys:
            raise InvalidProofFile(f"unknown keys in the proof document: {unknown_keys}")
        if document["kind"] != cls.KIND:
            raise InvalidProofFile(f"kind must be {cls.KIND!r}, got {document['kind']!r}")
        if document["leafEncoding"] != list(cls.LEAF_ENCODING):
            raise InvalidProofFile(
                f"leafEncoding of a {cls.KIND} proof must be {list(cls.LEAF_ENCODING)}, "
                f"got {document['leafEncoding']!r}"
            )
        value = document["value"]
        if not isinstance(value, list) or len(value) != len(cls.LEAF_ENCODING):
            raise InvalidProofFile(
                f"value must be a list of {len(cls.LEAF_ENCODING)} items for a {cls.KIND} proof, "
                f"got {value!r}"
            )
        return {
            "epoch": document["epoch"],
            "root": document["root"],
            "proof": document["proof"],
            "distributor": document.get("distributor"),
            "chain_id": document.get("chainId"),
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> ContributionProof | ClaimProof:
        """Parse a document of this kind from JSON text. Raise InvalidProofFile if malformed."""
        document = _parse_json(text)
        return cls.from_dict(document)  # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True)
class ContributionProof(_ProofDocument):
    """Proof that a scored session is a leaf of an epoch's contributions tree."""

    KIND: ClassVar[str] = "contribution"
    LEAF_ENCODING: ClassVar[tuple[str, ...]] = CONTRIBUTION_LEAF_ENCODING

    #: Session UUID padded to 32 bytes, 0x-hex. A uuid.UUID or 32 bytes is accepted as input.
    session_id: str
    #: SHA-256 of the encrypted recording, 0x-hex. 32 bytes is accepted as input.
    content_hash: str
    #: Contributor address in checksum case.
    contributor: str
    #: Points the session scored.
    points: int

    def __post_init__(self) -> None:
        self._normalize_common()
        session_id = self.session_id
        if isinstance(session_id, uuid.UUID):
            session_id = session_id_to_bytes32(session_id)
        raw_value = [session_id, self.content_hash, self.contributor, self.points]
        canonical = _canonical_value(self.LEAF_ENCODING, raw_value)
        object.__setattr__(self, "session_id", canonical[0])
        object.__setattr__(self, "content_hash", canonical[1])
        object.__setattr__(self, "contributor", canonical[2])
        object.__setattr__(self, "points", int(canonical[3]))

    @property
    def value(self) -> list[Any]:
        return [self.session_id, self.content_hash, self.contributor, str(self.points)]

    @property
    def session_uuid(self) -> uuid.UUID:
        """Session id as a UUID. Raise InvalidProofFile if its first 16 bytes are not zero."""
        raw = bytes.fromhex(self.session_id[2:])
        if raw[:16] != bytes(16):
            raise InvalidProofFile(f"session id {self.session_id} is not a zero-padded UUID")
        return uuid.UUID(bytes=raw[16:])

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ContributionProof:
        """Build a contribution proof from a parsed JSON document. Raise InvalidProofFile."""
        common = cls._common_fields(document)
        session_id, content_hash, contributor, points = document["value"]
        return cls(
            session_id=session_id,
            content_hash=content_hash,
            contributor=contributor,
            points=points,
            **common,
        )

    @classmethod
    def from_tree(
        cls,
        tree: StandardMerkleTree,
        index: int,
        *,
        epoch: int,
        distributor: str | None = None,
        chain_id: int | None = None,
    ) -> ContributionProof:
        """Build the proof document of value `index` of a contributions tree."""
        _check_tree_encoding(tree, cls)
        session_id, content_hash, contributor, points = tree.at(index)
        return cls(
            epoch=epoch,
            root=tree.root,
            session_id=session_id,
            content_hash=content_hash,
            contributor=contributor,
            points=points,
            proof=tuple(tree.proof(index)),
            distributor=distributor,
            chain_id=chain_id,
        )


@dataclass(frozen=True, kw_only=True)
class ClaimProof(_ProofDocument):
    """Proof of an account's cumulative entitlement in an epoch's claims tree."""

    KIND: ClassVar[str] = "claim"
    LEAF_ENCODING: ClassVar[tuple[str, ...]] = CLAIM_LEAF_ENCODING

    #: Claiming account in checksum case.
    account: str
    #: Entitlement of the account up to and including `epoch`, in token base units.
    cumulative_amount: int

    def __post_init__(self) -> None:
        self._normalize_common()
        canonical = _canonical_value(self.LEAF_ENCODING, [self.account, self.cumulative_amount])
        object.__setattr__(self, "account", canonical[0])
        object.__setattr__(self, "cumulative_amount", int(canonical[1]))

    @property
    def value(self) -> list[Any]:
        return [self.account, str(self.cumulative_amount)]

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ClaimProof:
        """Build a claim proof from a parsed JSON document. Raise InvalidProofFile."""
        common = cls._common_fields(document)
        account, cumulative_amount = document["value"]
        return cls(account=account, cumulative_amount=cumulative_amount, **common)

    @classmethod
    def from_tree(
        cls,
        tree: StandardMerkleTree,
        index: int,
        *,
        epoch: int,
        distributor: str | None = None,
        chain_id: int | None = None,
    ) -> ClaimProof:
        """Build the proof document of value `index` of a claims tree."""
        _check_tree_encoding(tree, cls)
        account, cumulative_amount = tree.at(index)
        return cls(
            epoch=epoch,
            root=tree.root,
            account=account,
            cumulative_amount=int(cumulative_amount),
            proof=tuple(tree.proof(index)),
            distributor=distributor,
            chain_id=chain_id,
        )


ProofDocument = ContributionProof | ClaimProof

_DOCUMENT_CLASSES: dict[str, type[ContributionProof] | type[ClaimProof]] = {
    ContributionProof.KIND: ContributionProof,
    ClaimProof.KIND: ClaimProof,
}


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of checking a proof document against the root written in it."""

    #: True when the proof leads from the leaf to `document.root`.
    valid: bool
    #: The parsed, normalized document.
    document: ContributionProof | ClaimProof
    #: keccak256(keccak256(abi.encode(value))) as hex.
    leaf_hash: str
    #: Root that the proof leads to, as hex. Equals `document.root` exactly when `valid`.
    computed_root: str

    @property
    def root(self) -> str:
        """Root claimed by the document, the one to compare with the contract's root."""
        return self.document.root


def load_proof_file(document: Mapping[str, Any] | str | bytes) -> ContributionProof | ClaimProof:
    """Parse a contribution or claim proof from a dict or JSON text, choosing by `kind`.

    Raise InvalidProofFile when the document is not valid JSON or does not follow the format.
    """
    if isinstance(document, (str, bytes, bytearray)):
        document = _parse_json(document)
    if not isinstance(document, Mapping):
        raise InvalidProofFile(
            f"a proof document must be a JSON object, got {type(document).__name__}"
        )
    kind = document.get("kind")
    document_class = _DOCUMENT_CLASSES.get(kind) if isinstance(kind, str) else None
    if document_class is None:
        raise InvalidProofFile(
            f"unknown proof kind {kind!r}: expected one of {sorted(_DOCUMENT_CLASSES)}"
        )
    return document_class.from_dict(document)


def verify_proof_file(
    document: ContributionProof | ClaimProof | Mapping[str, Any] | str | bytes,
) -> VerificationResult:
    """Check the proof of a document against the root inside it, without any network access.

    Raise InvalidProofFile for a malformed document. A well-formed document whose proof does
    not lead to its root gives a result with `valid` set to False.
    """
    if not isinstance(document, (ContributionProof, ClaimProof)):
        document = load_proof_file(document)
    leaf = leaf_encoding_of(document.LEAF_ENCODING).leaf_hash(document.value)
    siblings = [parse_node(node) for node in document.proof]
    computed_root = core.process_proof(leaf, siblings)
    return VerificationResult(
        valid=to_hex(computed_root) == document.root,
        document=document,
        leaf_hash=to_hex(leaf),
        computed_root=to_hex(computed_root),
    )


def _parse_json(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidProofFile(f"the proof document is not valid JSON: {error}") from None


def _canonical_value(leaf_encoding: tuple[str, ...], value: list[Any]) -> list[Any]:
    try:
        return leaf_encoding_of(leaf_encoding).canonical(value)
    except MerkleInputError as error:
        raise InvalidProofFile(f"value: {error}") from None


def _check_tree_encoding(
    tree: StandardMerkleTree, document_class: type[ContributionProof] | type[ClaimProof]
) -> None:
    if tree.leaf_encoding != document_class.LEAF_ENCODING:
        raise InvalidProofFile(
            f"a {document_class.KIND} proof needs a tree with leaf encoding "
            f"{list(document_class.LEAF_ENCODING)}, got {list(tree.leaf_encoding)}"
        )
