"""EIP-712 signed claims: the typed data an account signs so that a relayer can claim for it.

The distributor verifies the signature of

    Claim(address account,address recipient,uint256 cumulativeAmount,uint256 nonce,uint256 deadline)

under the domain {name: "RewardDistributor", version: "1", chainId, verifyingContract}, with
`nonce` equal to `nonces(account)` and `deadline` a Unix time in seconds (inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import to_checksum_address

#: EIP-712 domain name and version of the RewardDistributor.
DOMAIN_NAME, DOMAIN_VERSION = "RewardDistributor", "1"

CLAIM_TYPE = [
    {"name": "account", "type": "address"},
    {"name": "recipient", "type": "address"},
    {"name": "cumulativeAmount", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True)
class SignedClaimRequest:
    """A claim an account signs to have its unclaimed entitlement minted to `recipient`.

    Amounts are in base units; `deadline` is a Unix time in seconds.
    """

    account: str
    recipient: str
    cumulative_amount: int
    nonce: int
    deadline: int

    def typed_data(self, *, chain_id: int, distributor: str) -> dict[str, Any]:
        """Return the full EIP-712 message, as `eth_signTypedData_v4` takes it."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Claim": CLAIM_TYPE,
            },
            "primaryType": "Claim",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": to_checksum_address(distributor),
            },
            "message": {
                "account": to_checksum_address(self.account),
                "recipient": to_checksum_address(self.recipient),
                "cumulativeAmount": self.cumulative_amount,
                "nonce": self.nonce,
                "deadline": self.deadline,
            },
        }

    def sign(self, signer: LocalAccount, *, chain_id: int, distributor: str) -> bytes:
        """Return `signer`'s 65-byte signature (r, s, v) of this claim."""
        signable = encode_typed_data(full_message=self.typed_data(chain_id=chain_id, distributor=distributor))
        return bytes(signer.sign_message(signable).signature)

    def recover_signer(self, signature: bytes, *, chain_id: int, distributor: str) -> str:
        """Return the address that made `signature`. Raises ValueError on a malformed signature."""
        signable = encode_typed_data(full_message=self.typed_data(chain_id=chain_id, distributor=distributor))
        try:
            return Account.recover_message(signable, signature=signature)
        except BadSignature as error:
            raise ValueError(f"invalid signature: {error}") from error
