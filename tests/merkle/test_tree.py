"""Unit and property tests of ledger.merkle without the JavaScript reference."""

import copy
import gc
import json
import uuid

import eth_abi
import pytest
from eth_utils import to_checksum_address as eth_utils_checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sha3 import keccak_256

from ledger.merkle import (
    CLAIM_LEAF_ENCODING,
    ClaimProof,
    ContributionProof,
    EmptyTree,
    InvalidDump,
    InvalidLeafEncoding,
    InvalidLeafValue,
    InvalidMerkleNode,
    InvalidProofFile,
    LeafEncoding,
    LeafIndexOutOfRange,
    LeafNotFound,
    MerkleInputError,
    MerkleInvariantError,
    StandardMerkleTree,
    claims_tree,
    contributions_tree,
    load_proof_file,
    session_id_to_bytes32,
    standard_leaf_hash,
    to_checksum_address,
    verify,
    verify_proof_file,
)
from ledger.merkle import core

MAX_UINT256 = 2**256 - 1
ALICE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
BOB = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
CAROL = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"
SESSION = uuid.UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")
CONTENT_HASH = bytes.fromhex("aa" * 32)


def keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()


def claim_leaf(account: str, amount: int) -> bytes:
    encoded = bytes(12) + bytes.fromhex(account[2:]) + amount.to_bytes(32, "big")
    return keccak(keccak(encoded))


def sorted_pair_hash(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


# Small trees, checked against hashes computed by hand


def test_one_leaf_root_is_leaf_hash():
    tree = claims_tree([(ALICE, 10**18)])

    assert tree.root_bytes == claim_leaf(ALICE, 10**18)
    assert tree.proof(0) == []
    assert tree.proofs() == [[]]
    assert verify(tree.root, CLAIM_LEAF_ENCODING, [ALICE, 10**18], [])
    assert tree.dump()["values"] == [{"value": [ALICE, str(10**18)], "treeIndex": 0}]


def test_two_leaves_prove_each_other():
    alice_leaf = claim_leaf(ALICE, 5)
    bob_leaf = claim_leaf(BOB, 7)

    tree = claims_tree([(ALICE, 5), (BOB, 7)])

    assert tree.root_bytes == sorted_pair_hash(alice_leaf, bob_leaf)
    assert tree.proof(0) == ["0x" + bob_leaf.hex()]
    assert tree.proof(1) == ["0x" + alice_leaf.hex()]


def test_three_leaves_layout():
    leaves = sorted([claim_leaf(ALICE, 1), claim_leaf(BOB, 2), claim_leaf(CAROL, 3)])

    tree = claims_tree([(ALICE, 1), (BOB, 2), (CAROL, 3)])
    nodes = [bytes.fromhex(node[2:]) for node in tree.dump()["tree"]]

    # Sorted leaves fill the end of the array in reverse: the smallest hash is the last node.
    assert nodes[4] == leaves[0]
    assert nodes[3] == leaves[1]
    assert nodes[2] == leaves[2]
    assert nodes[1] == sorted_pair_hash(leaves[0], leaves[1])
    assert nodes[0] == sorted_pair_hash(nodes[1], leaves[2])


def test_equal_amounts_are_distinct_leaves():
    tree = claims_tree([(ALICE, 10**18), (BOB, 10**18)])

    assert len(set(tree.dump()["tree"])) == 3
    assert tree.verify_value(0, tree.proof(0))
    assert tree.verify_value(1, tree.proof(1))
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [ALICE, 10**18], tree.proof(1))


def test_duplicate_values_keep_insertion_order():
    tree = StandardMerkleTree.of([[ALICE, 1], [ALICE, 1], [BOB, 2]], CLAIM_LEAF_ENCODING)

    tree_indices = [entry["treeIndex"] for entry in tree.dump()["values"]]
    assert tree_indices[0] > tree_indices[1]
    assert tree.index_of([ALICE, 1]) == 1
    assert all(tree.verify_value(index, tree.proof(index)) for index in range(3))


def test_values_keep_insertion_order():
    entries = [(CAROL, 3), (ALICE, 1), (BOB, 2)]

    tree = claims_tree(entries)

    assert [tree.at(index) for index in range(3)] == [[a, str(n)] for a, n in entries]
    assert list(tree.entries()) == [(0, [CAROL, "3"]), (1, [ALICE, "1"]), (2, [BOB, "2"])]
    assert len(tree) == 3


def test_column_returns_canonical_items():
    tree = claims_tree([(CAROL.lower(), 3), (ALICE, 1)])

    assert tree.column(0) == [CAROL, ALICE]
    assert tree.column(1) == ["3", "1"]
    with pytest.raises(LeafIndexOutOfRange):
        tree.column(2)


def test_garbage_collector_state_restored():
    entries = [(ALICE, 1), (BOB, 2)]
    assert gc.isenabled()

    claims_tree(entries).proofs()
    assert gc.isenabled()

    gc.disable()
    try:
        claims_tree(entries).proofs()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_render_lists_every_node():
    tree = claims_tree([(ALICE, 1), (BOB, 2), (CAROL, 3)])

    lines = tree.render().splitlines()

    assert lines[0] == f"0) {tree.root}"
    assert len(lines) == 5
    assert lines[1].startswith("├─ 1) 0x")
    assert lines[2].startswith("│  ├─ 3) 0x")


# Zero leaves


def test_zero_leaves_raise_empty_tree():
    with pytest.raises(EmptyTree, match="zero"):
        StandardMerkleTree.of([], CLAIM_LEAF_ENCODING)
    with pytest.raises(EmptyTree):
        claims_tree([])
    with pytest.raises(EmptyTree):
        contributions_tree(iter([]))


def test_empty_tree_is_value_error():
    assert issubclass(EmptyTree, ValueError)
    assert issubclass(InvalidDump, ValueError)
    assert not issubclass(MerkleInvariantError, ValueError)


# Input validation


@pytest.mark.parametrize(
    "account",
    [
        "0x5B38Da6a701c568545dCfcB03FcB875f56beddC",  # 39 hex digits
        "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4a",  # 41 hex digits
        "5B38Da6a701c568545dCfcB03FcB875f56beddC4",  # no 0x
        "0X5B38Da6a701c568545dCfcB03FcB875f56beddC4",  # upper-case prefix
        "0x5B38Da6a701c568545dCfcB03FcB875f56beddCg",  # not hex
        "0x5b38Da6a701c568545dCfcB03FcB875f56beddC4",  # wrong checksum
        bytes(20),
        None,
    ],
)
def test_invalid_address_rejected(account):
    with pytest.raises(InvalidLeafValue, match="address"):
        claims_tree([(account, 1)])


def test_address_case_is_normalized():
    lower = claims_tree([(ALICE.lower(), 1)])
    upper = claims_tree([("0x" + ALICE[2:].upper(), 1)])

    assert lower.at(0)[0] == ALICE
    assert upper.at(0)[0] == ALICE
    assert lower.root == upper.root == claims_tree([(ALICE, 1)]).root


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (-1, "out of range"),
        (2**256, "out of range"),
        (True, "expected an int"),
        (1.0, "expected an int"),
        ("1", "expected an int"),
        (None, "expected an int"),
    ],
)
def test_invalid_amount_rejected(amount, message):
    with pytest.raises(InvalidLeafValue, match=message):
        claims_tree([(ALICE, amount)])


def test_uint256_bounds_accepted():
    tree = claims_tree([(ALICE, 0), (BOB, MAX_UINT256)])

    assert tree.at(1) == [BOB, str(MAX_UINT256)]


def test_error_names_value_index_and_position():
    with pytest.raises(InvalidLeafValue, match=r"values\[1\]: position 1 \(uint256\)"):
        claims_tree([(ALICE, 1), (BOB, -5)])


@pytest.mark.parametrize(
    "content_hash",
    [
        bytes(31),
        bytes(33),
        "0x" + "aa" * 31,
        "aa" * 32,
        "0x" + "zz" * 32,
        "0x" + "a" * 63,
        42,
    ],
)
def test_invalid_bytes32_rejected(content_hash):
    with pytest.raises(InvalidLeafValue, match="position 1"):
        contributions_tree([(SESSION, content_hash, ALICE, 1)])


def test_bytes32_accepts_bytes_and_hex():
    from_bytes = contributions_tree([(SESSION, CONTENT_HASH, ALICE, 1)])
    from_hex = contributions_tree([(SESSION, "0x" + "AA" * 32, ALICE, 1)])

    assert from_bytes.root == from_hex.root
    assert from_hex.at(0)[1] == "0x" + "aa" * 32


@pytest.mark.parametrize("value", [[ALICE], [ALICE, 1, 2], ALICE, {"account": ALICE}])
def test_wrong_value_shape_rejected(value):
    with pytest.raises(InvalidLeafValue):
        StandardMerkleTree.of([value], CLAIM_LEAF_ENCODING)


@pytest.mark.parametrize(
    "leaf_encoding",
    [[], "address", ["uint7"], ["bytes33"], ["fixed128x18"], ["foo"], [1], ["function"]],
)
def test_invalid_leaf_encoding_rejected(leaf_encoding):
    with pytest.raises(InvalidLeafEncoding):
        StandardMerkleTree.of([[1]], leaf_encoding)


def test_duplicate_account_rejected():
    with pytest.raises(InvalidLeafValue, match="appears at indices 0 and 2"):
        claims_tree([(ALICE, 1), (BOB, 2), (ALICE.lower(), 3)])


def test_duplicate_session_rejected():
    with pytest.raises(InvalidLeafValue, match="session id"):
        contributions_tree(
            [(SESSION, CONTENT_HASH, ALICE, 1), (SESSION, bytes(32), BOB, 2)]
        )


def test_session_id_to_bytes32():
    padded = session_id_to_bytes32(SESSION)

    assert len(padded) == 32
    assert padded[:16] == bytes(16)
    assert padded[16:] == SESSION.bytes
    with pytest.raises(InvalidLeafValue):
        session_id_to_bytes32(str(SESSION))


def test_contribution_session_uuid_and_bytes_agree():
    with_uuid = contributions_tree([(SESSION, CONTENT_HASH, ALICE, 10)])
    with_bytes = contributions_tree([(session_id_to_bytes32(SESSION), CONTENT_HASH, ALICE, 10)])

    assert with_uuid.root == with_bytes.root
    assert with_uuid.at(0)[0] == "0x" + session_id_to_bytes32(SESSION).hex()


# Addresses and encoding against eth_utils and eth_abi


@settings(max_examples=200)
@given(raw=st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw):
    expected = eth_utils_checksum(raw)

    assert to_checksum_address("0x" + raw.hex()) == expected
    assert to_checksum_address(expected) == expected
    assert to_checksum_address("0x" + raw.hex().upper()) == expected


STATIC_TYPES = ["address", "bool", "uint8", "uint256", "int16", "int256", "bytes1", "bytes32"]


def static_item(abi_type: str) -> st.SearchStrategy:
    if abi_type == "address":
        return st.binary(min_size=20, max_size=20).map(eth_utils_checksum)
    if abi_type == "bool":
        return st.booleans()
    if abi_type.startswith("uint"):
        return st.integers(0, 2 ** int(abi_type[4:]) - 1)
    if abi_type.startswith("int"):
        bits = int(abi_type[3:])
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    size = int(abi_type[5:])
    return st.binary(min_size=size, max_size=size)


@st.composite
def static_leaf(draw):
    types = draw(st.lists(st.sampled_from(STATIC_TYPES), min_size=1, max_size=5))
    return types, [draw(static_item(abi_type)) for abi_type in types]


@settings(max_examples=200)
@given(case=static_leaf())
def test_word_encoding_equals_eth_abi(case):
    types, value = case
    encoding = LeafEncoding(types)
    canonical = encoding.canonical(value, strict=True)

    by_hand = encoding.encode(canonical)

    assert encoding.word_sized
    assert by_hand == encoding.encode_with_eth_abi(canonical)
    assert by_hand == eth_abi.encode(types, value)
    assert standard_leaf_hash(types, value) == keccak(keccak(by_hand))
    # A one-leaf tree goes through the column-wise batch path, and its root is the leaf hash.
    assert StandardMerkleTree.of([value], types).root_bytes == keccak(keccak(by_hand))


def test_dynamic_encoding_uses_eth_abi():
    types = ["string", "uint256[]", "(address,bytes)"]
    value = ["hello", [1, 2, 3], (ALICE, b"\x01\x02")]
    encoding = LeafEncoding(types)

    canonical = encoding.canonical(value, strict=True)

    assert not encoding.word_sized
    assert canonical == ["hello", ["1", "2", "3"], [ALICE, "0x0102"]]
    assert encoding.encode(canonical) == eth_abi.encode(types, value)


# Proofs and verification


def test_proof_index_out_of_range():
    tree = claims_tree([(ALICE, 1), (BOB, 2)])

    for index in [-1, 2, True, "0", 1.0]:
        with pytest.raises(LeafIndexOutOfRange):
            tree.proof(index)
    assert issubclass(LeafIndexOutOfRange, IndexError)


def test_verify_false_on_wrong_inputs():
    tree = claims_tree([(ALICE, 1), (BOB, 2), (CAROL, 3)])
    proof = tree.proof(1)

    assert verify(tree.root, CLAIM_LEAF_ENCODING, [BOB, 2], proof)
    assert verify(tree.root, CLAIM_LEAF_ENCODING, [BOB.lower(), "2"], proof)
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [BOB, 3], proof)
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [ALICE, 2], proof)
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [BOB, 2], proof[:-1])
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [BOB, 2], [*proof, proof[0]])
    assert not verify("0x" + "00" * 32, CLAIM_LEAF_ENCODING, [BOB, 2], proof)


def test_verify_accepts_bytes_and_upper_case_hex():
    tree = claims_tree([(ALICE, 1), (BOB, 2)])
    proof_bytes = [bytes.fromhex(node[2:]) for node in tree.proof(0)]

    assert verify(tree.root_bytes, CLAIM_LEAF_ENCODING, [ALICE, 1], proof_bytes)
    assert verify("0x" + tree.root[2:].upper(), CLAIM_LEAF_ENCODING, [ALICE, 1], tree.proof(0))


@pytest.mark.parametrize(
    ("root", "proof"),
    [
        ("0x1234", []),
        ("0x" + "00" * 32, ["0x" + "00" * 31]),
        ("0x" + "00" * 32, "0x" + "00" * 32),
        ("0x" + "00" * 32, [None]),
    ],
)
def test_verify_rejects_malformed_nodes(root, proof):
    with pytest.raises(InvalidMerkleNode):
        verify(root, CLAIM_LEAF_ENCODING, [ALICE, 1], proof)


def test_index_of_and_leaf_hash():
    tree = claims_tree([(ALICE, 1), (BOB, 2)])

    assert tree.index_of([BOB.lower(), 2]) == 1
    assert tree.leaf_hash([ALICE, 1]) == "0x" + claim_leaf(ALICE, 1).hex()
    with pytest.raises(LeafNotFound):
        tree.index_of([BOB, 3])


def test_broken_invariant_raises_invariant_error():
    tree = claims_tree([(ALICE, 1), (BOB, 2), (CAROL, 3)])
    # Corrupt the internal node on the path of every leaf, which no caller can do through the API.
    tree._nodes[1] = bytes(32)

    with pytest.raises(MerkleInvariantError):
        for index in range(3):
            tree.proof(index)


def test_core_all_proofs_equal_single_proofs():
    leaves = [keccak(bytes([index])) for index in range(11)]
    tree = core.make_tree(leaves)

    all_proofs = core.get_all_proofs(tree)

    for index in range(len(tree)):
        if core.is_leaf_index(len(tree), index):
            assert all_proofs[index] == core.get_proof(tree, index)
            assert core.process_proof(tree[index], all_proofs[index]) == tree[0]
    assert core.is_valid_tree(tree)
    assert core.find_invalid_node(tree[:-1]) is not None
    assert core.find_invalid_node([]) == 0


# Dumps


def sample_tree() -> StandardMerkleTree:
    return claims_tree([(ALICE, 10**18), (BOB, 2**70), (CAROL, 10**18), (ALICE[:-1].lower() + "5", 4)])


def test_dump_round_trip():
    tree = sample_tree()
    dump = json.loads(json.dumps(tree.dump()))

    loaded = StandardMerkleTree.load(dump)

    assert loaded.dump() == tree.dump()
    assert loaded.root == tree.root
    assert loaded.proofs() == tree.proofs()
    assert loaded.leaf_encoding == CLAIM_LEAF_ENCODING


def test_dump_is_a_copy():
    tree = sample_tree()
    dump = tree.dump()

    dump["tree"][0] = "0x" + "00" * 32
    dump["values"][0]["value"][1] = "0"

    assert tree.root != dump["tree"][0]
    assert tree.at(0)[1] == str(10**18)


def test_load_normalizes_values():
    tree = sample_tree()
    dump = tree.dump()
    for entry in dump["values"]:
        entry["value"] = [entry["value"][0].lower(), int(entry["value"][1])]

    assert StandardMerkleTree.load(dump).dump() == tree.dump()


def tamper(mutation) -> dict:
    dump = copy.deepcopy(sample_tree().dump())
    mutation(dump)
    return dump


def bump_amount(dump):
    dump["values"][1]["value"][1] = str(int(dump["values"][1]["value"][1]) + 1)


def swap_tree_indices(dump):
    first, second = dump["values"][0], dump["values"][1]
    first["treeIndex"], second["treeIndex"] = second["treeIndex"], first["treeIndex"]


def replace_internal_node(dump):
    dump["tree"][1] = "0x" + "11" * 32


def replace_leaf_and_value(dump):
    """Replace a leaf and its value consistently, so only the parent hashes catch it."""
    entry = dump["values"][0]
    entry["value"] = [BOB.lower(), "999"]
    dump["tree"][entry["treeIndex"]] = "0x" + claim_leaf(BOB, 999).hex()


TAMPERED_DUMPS = {
    "amount": (bump_amount, r"values\[1\] does not hash to tree"),
    "swapped indices": (swap_tree_indices, "does not hash to tree"),
    "internal node": (replace_internal_node, r"tree\[1\] is not the hash"),
    "leaf and value": (replace_leaf_and_value, r"tree\[\d\] is not the hash"),
    "format": (lambda d: d.update(format="standard-v2"), "unknown dump format"),
    "missing key": (lambda d: d.pop("leafEncoding"), "missing keys"),
    "extra key": (lambda d: d.update(root=d["tree"][0]), "unknown keys"),
    "encoding": (lambda d: d.update(leafEncoding=["address", "bytes32"]), "invalid hex"),
    "bad encoding": (lambda d: d.update(leafEncoding=["address", "uint7"]), "leafEncoding"),
    "dropped value": (lambda d: d["values"].pop(), "has 4 leaves"),
    "dropped node": (lambda d: d["tree"].pop(), "leaves"),
    "empty tree": (lambda d: d.update(tree=[], values=[]), "empty"),
    "not a leaf": (lambda d: d["values"][0].update(treeIndex=0), "not a leaf"),
    "bool index": (lambda d: d["values"][0].update(treeIndex=True), "must be an int"),
    "reused index": (
        lambda d: d["values"][0].update(treeIndex=d["values"][1]["treeIndex"]),
        "used twice",
    ),
    "bad node": (lambda d: d["tree"].__setitem__(2, "0x12"), r"tree\[2\]"),
    "bad value": (lambda d: d["values"][0].update(value=["0x12", "1"]), "invalid address"),
    "extra value key": (lambda d: d["values"][0].update(proof=[]), "exactly the keys"),
}


@pytest.mark.parametrize("case", TAMPERED_DUMPS, ids=list(TAMPERED_DUMPS))
def test_tampered_dump_rejected(case):
    mutation, message = TAMPERED_DUMPS[case]

    with pytest.raises(InvalidDump, match=message):
        StandardMerkleTree.load(tamper(mutation))


def test_load_rejects_non_object():
    with pytest.raises(InvalidDump):
        StandardMerkleTree.load([])  # type: ignore[arg-type]


# Proof documents


def test_claim_proof_round_trip():
    tree = sample_tree()

    document = ClaimProof.from_tree(tree, 1, epoch=4, distributor=CAROL.lower(), chain_id=31337)
    parsed = ClaimProof.from_json(document.to_json())

    assert parsed == document
    assert document.distributor == CAROL
    assert json.loads(document.to_json()) == {
        "kind": "claim",
        "epoch": 4,
        "root": tree.root,
        "leafEncoding": ["address", "uint256"],
        "value": [BOB, str(2**70)],
        "proof": tree.proof(1),
        "distributor": CAROL,
        "chainId": 31337,
    }
    assert verify_proof_file(document.to_json()).valid


def test_contribution_proof_round_trip():
    other = uuid.UUID("00000000-0000-4000-8000-000000000001")
    tree = contributions_tree(
        [(SESSION, CONTENT_HASH, ALICE, 1500), (other, bytes(32), BOB.lower(), 1500)]
    )

    document = ContributionProof.from_tree(tree, 0, epoch=2)
    parsed = load_proof_file(document.to_dict())

    assert parsed == document
    assert isinstance(parsed, ContributionProof)
    assert parsed.session_uuid == SESSION
    assert parsed.value == [
        "0x" + session_id_to_bytes32(SESSION).hex(),
        "0x" + CONTENT_HASH.hex(),
        ALICE,
        "1500",
    ]
    assert parsed.distributor is None
    assert parsed.chain_id is None

    result = verify_proof_file(parsed)
    assert result.valid
    assert result.computed_root == tree.root
    assert result.root == tree.root
    assert result.leaf_hash == tree.leaf_hash(tree.at(0))


def test_proof_file_wrong_value_is_invalid():
    tree = sample_tree()
    document = ClaimProof.from_tree(tree, 0, epoch=1).to_dict()
    document["value"][1] = str(10**18 + 1)

    result = verify_proof_file(document)

    assert not result.valid
    assert result.computed_root != result.root


def test_proof_file_from_wrong_tree_rejected():
    with pytest.raises(InvalidProofFile, match="leaf encoding"):
        ContributionProof.from_tree(sample_tree(), 0, epoch=1)


def valid_claim_document() -> dict:
    return ClaimProof.from_tree(sample_tree(), 0, epoch=1).to_dict()


MALFORMED_DOCUMENTS = {
    "kind": (lambda d: d.update(kind="deposit"), "unknown proof kind"),
    "missing proof": (lambda d: d.pop("proof"), "missing keys"),
    "extra key": (lambda d: d.update(amount="5"), "unknown keys"),
    "encoding": (lambda d: d.update(leafEncoding=["address", "uint128"]), "leafEncoding"),
    "root": (lambda d: d.update(root="0x1234"), "root"),
    "proof node": (lambda d: d.update(proof=["0xzz"]), r"proof\[0\]"),
    "proof string": (lambda d: d.update(proof="0x" + "00" * 32), "list"),
    "epoch": (lambda d: d.update(epoch=-1), "epoch"),
    "epoch string": (lambda d: d.update(epoch="1"), "epoch"),
    "chain id": (lambda d: d.update(chainId=0), "chainId"),
    "distributor": (lambda d: d.update(distributor="0x1234"), "distributor"),
    "value width": (lambda d: d.update(value=[ALICE]), "value"),
    "amount": (lambda d: d["value"].__setitem__(1, "-1"), "value"),
    "account": (lambda d: d["value"].__setitem__(0, ALICE[:-1] + "5"), "checksum"),
}


@pytest.mark.parametrize("case", MALFORMED_DOCUMENTS, ids=list(MALFORMED_DOCUMENTS))
def test_malformed_proof_file_rejected(case):
    mutation, message = MALFORMED_DOCUMENTS[case]
    document = valid_claim_document()
    mutation(document)

    with pytest.raises(InvalidProofFile, match=message):
        verify_proof_file(document)


def test_proof_file_invalid_json_rejected():
    with pytest.raises(InvalidProofFile, match="not valid JSON"):
        verify_proof_file("{")
    assert issubclass(InvalidProofFile, MerkleInputError)


def test_session_uuid_requires_padding():
    document = ContributionProof(
        epoch=1,
        root="0x" + "00" * 32,
        session_id="0x" + "01" * 32,
        content_hash=CONTENT_HASH,
        contributor=ALICE,
        points=1,
    )

    with pytest.raises(InvalidProofFile, match="zero-padded"):
        _ = document.session_uuid


# Properties


claim_entries_strategy = st.lists(
    st.tuples(
        st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex()),
        st.one_of(st.integers(0, 10**6), st.integers(0, MAX_UINT256)),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda entry: entry[0],
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(entries=claim_entries_strategy)
def test_every_proof_verifies(entries):
    tree = claims_tree(entries)
    proofs = tree.proofs()

    assert proofs == [tree.proof(index) for index in range(len(entries))]
    for (account, amount), proof in zip(entries, proofs):
        assert verify(tree.root, CLAIM_LEAF_ENCODING, [account, amount], proof)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(entries=claim_entries_strategy, data=st.data())
def test_changing_a_value_breaks_its_proof(entries, data):
    tree = claims_tree(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    account, amount = entries[index]
    proof = tree.proof(index)
    other_amount = data.draw(st.integers(0, MAX_UINT256).filter(lambda n: n != amount))
    other_account = data.draw(
        st.binary(min_size=20, max_size=20)
        .map(lambda raw: "0x" + raw.hex())
        .filter(lambda a: a != account.lower())
    )

    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [account, other_amount], proof)
    assert not verify(tree.root, CLAIM_LEAF_ENCODING, [other_account, amount], proof)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        flipped = proof.copy()
        flipped[position] = "0x" + bytes(
            a ^ b for a, b in zip(bytes.fromhex(proof[position][2:]), b"\x01" + bytes(31))
        ).hex()
        assert not verify(tree.root, CLAIM_LEAF_ENCODING, [account, amount], flipped)


contribution_entries_strategy = st.lists(
    st.tuples(
        st.uuids(),
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=20, max_size=20).map(eth_utils_checksum),
        st.integers(0, MAX_UINT256),
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda entry: entry[0],
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(entries=contribution_entries_strategy, data=st.data())
def test_contribution_proofs_verify_and_bind(entries, data):
    tree = contributions_tree(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    value = tree.at(index)
    proof = tree.proof(index)
    position = data.draw(st.integers(0, 3))
    changed = value.copy()
    if position == 3:
        changed[3] = str((int(value[3]) + 1) % (MAX_UINT256 + 1))
    else:
        # Flip the lowest bit of every byte. A changed address is written in lower case.
        flipped = bytes(byte ^ 1 for byte in bytes.fromhex(value[position][2:]))
        changed[position] = "0x" + flipped.hex()

    assert StandardMerkleTree.verify(tree.root, tree.leaf_encoding, value, proof)
    assert verify_proof_file(ContributionProof.from_tree(tree, index, epoch=1)).valid
    assert not StandardMerkleTree.verify(tree.root, tree.leaf_encoding, changed, proof)


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(entries=claim_entries_strategy)
def test_dump_load_preserves_tree(entries):
    tree = claims_tree(entries)

    loaded = StandardMerkleTree.load(json.loads(json.dumps(tree.dump())))

    assert loaded.dump() == tree.dump()
    assert loaded.proofs() == tree.proofs()
