"""Claim calldata built with eth_abi equals what web3 encodes from the contract ABI."""

from web3 import Web3

from ledger.chain.calldata import claim_calldata
from ledger.chain.contracts import distributor_contract


def test_claim_calldata_matches_web3():
    contract = distributor_contract(Web3(), "0x" + "11" * 20)
    account = "0x52908400098527886E0F7030069857D2E4169EE7"
    proof = ["0x" + f"{i:02x}" * 32 for i in range(5)]

    expected = contract.encode_abi("claim", args=[account, 2**200 + 7, [bytes.fromhex(p[2:]) for p in proof]])

    assert claim_calldata(account, 2**200 + 7, proof) == expected


def test_claim_calldata_empty_proof():
    contract = distributor_contract(Web3(), "0x" + "22" * 20)
    account = "0x52908400098527886E0F7030069857D2E4169EE7"

    assert claim_calldata(account, 1, []) == contract.encode_abi("claim", args=[account, 1, []])
