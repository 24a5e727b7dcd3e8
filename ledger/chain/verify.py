"""Verifying a proof document against the chain, with no trust in the service that issued it."""

from dataclasses import dataclass

from ledger.chain.anchoring import read_distributor_epoch
from ledger.chain.client import connect
from ledger.chain.contracts import distributor_contract
from ledger.merkle import ClaimProof, ContributionProof, verify_proof_file


@dataclass(frozen=True)
class ChainVerification:
    """Each check of `verify_against_chain`, so a failure says which link broke."""

    proof_matches_root: bool
    """The proof leads from the leaf to the root written in the document."""
    root_on_chain: bool
    """The contract holds that root for that epoch (and has not revoked it)."""
    contract_accepts: bool | None
    """The contract's own view accepts the proof (contribution proofs only)."""
    chain_root: str
    messages: list[str]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return self.proof_matches_root and self.root_on_chain and self.contract_accepts is not False


def verify_against_chain(
    document: ContributionProof | ClaimProof, *, rpc_url: str, distributor: str | None = None
) -> ChainVerification:
    """Check a proof offline, then its root against the distributor's record of the epoch.

    Raises:
        ValueError: when no distributor address is given and the document names none.
        ledger.chain.errors.ChainError: when the RPC endpoint fails.
    """
    address = distributor or document.distributor
    if address is None:
        raise ValueError("the proof names no distributor contract: pass --distributor ADDRESS")
    w3 = connect(rpc_url, expected_chain_id=document.chain_id)
    contract = distributor_contract(w3, address)
    offline = verify_proof_file(document)
    messages = []
    if not offline.valid:
        messages.append(f"the proof leads to {offline.computed_root}, not to the document's root {document.root}")

    record = read_distributor_epoch(contract, document.epoch)
    chain_root = record.contributions_root if isinstance(document, ContributionProof) else record.claims_root
    root_on_chain = ("0x" + chain_root.hex()) == document.root and not record.revoked
    if not root_on_chain:
        messages.append(f"the contract holds root 0x{chain_root.hex()} for epoch {document.epoch}, not {document.root}")

    contract_accepts = None
    if isinstance(document, ContributionProof):
        contract_accepts = bool(
            contract.functions.verifyContribution(
                document.epoch,
                bytes.fromhex(document.session_id[2:]),
                bytes.fromhex(document.content_hash[2:]),
                document.contributor,
                document.points,
                [bytes.fromhex(node[2:]) for node in document.proof],
            ).call()
        )
        if not contract_accepts:
            messages.append("the contract's verifyContribution view rejects the proof")
    return ChainVerification(offline.valid, root_on_chain, contract_accepts, "0x" + chain_root.hex(), messages)


__all__ = ["ChainVerification", "verify_against_chain"]
