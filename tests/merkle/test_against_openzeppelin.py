"""Cross-checks of ledger.merkle against @openzeppelin/merkle-tree 1.0.8 run by node.

The JavaScript side receives values in the canonical JSON form computed here independently of
ledger.merkle (eth_utils for checksums), so equal dumps show that both sides agree on the form.
"""

import json
import random
import uuid

import pytest
from eth_utils import to_checksum_address

from ledger.merkle import (
    CLAIM_LEAF_ENCODING,
    CONTRIBUTION_LEAF_ENCODING,
    ClaimProof,
    ContributionProof,
    StandardMerkleTree,
    claims_tree,
    contributions_tree,
    session_id_to_bytes32,
    verify,
    verify_proof_file,
)

SIZES = [1, 2, 3, 5, 8, 1000]
MAX_UINT256 = 2**256 - 1

# Amounts that a JavaScript number cannot hold exactly, plus the uint256 bounds.
LARGE_AMOUNTS = [0, 2**53 + 1, 10**24 + 7, 2**128, MAX_UINT256]


def random_address(rng: random.Random) -> str:
    return to_checksum_address(rng.randbytes(20))


def input_case(address: str, index: int) -> str:
    """Give every other address in lower case and the rest in valid mixed checksum case."""
    return address.lower() if index % 2 else address


def claim_entries(size: int, seed: int) -> tuple[list[tuple[str, int]], list[list[str]]]:
    """Return claim entries as a caller would pass them and their canonical JSON values."""
    rng = random.Random(seed)
    entries = []
    canonical = []
    for index in range(size):
        account = random_address(rng)
        if index < len(LARGE_AMOUNTS):
            amount = LARGE_AMOUNTS[index]
        elif index % 7 == 0:
            amount = 10**18  # The same amount for many different accounts.
        else:
            amount = rng.randrange(MAX_UINT256 + 1)
        entries.append((input_case(account, index), amount))
        canonical.append([account, str(amount)])
    if size >= 3:
        # Two different accounts with the same amount must still be two distinct leaves.
        entries[2] = (entries[2][0], entries[1][1])
        canonical[2][1] = canonical[1][1]
    return entries, canonical


def contribution_entries(size: int, seed: int) -> tuple[list[tuple], list[list[str]]]:
    rng = random.Random(seed)
    contributors = [random_address(rng) for _ in range(max(1, size // 3))]
    entries = []
    canonical = []
    for index in range(size):
        session_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        content_hash = rng.randbytes(32)
        contributor = contributors[index % len(contributors)]
        points = LARGE_AMOUNTS[index] if index < len(LARGE_AMOUNTS) else rng.choice([100, 2500])
        entries.append((session_id, content_hash, input_case(contributor, index), points))
        canonical.append(
            [
                "0x" + (bytes(16) + session_id.bytes).hex(),
                "0x" + content_hash.hex(),
                contributor,
                str(points),
            ]
        )
    return entries, canonical


def build_python(kind: str, size: int):
    if kind == "claims":
        entries, canonical = claim_entries(size, seed=size)
        return claims_tree(entries), entries, canonical, list(CLAIM_LEAF_ENCODING)
    entries, canonical = contribution_entries(size, seed=size)
    return contributions_tree(entries), entries, canonical, list(CONTRIBUTION_LEAF_ENCODING)


def compact(document) -> str:
    return json.dumps(document, separators=(",", ":"))


def proof_document(kind: str, tree: StandardMerkleTree, index: int):
    if kind == "claims":
        return ClaimProof.from_tree(tree, index, epoch=7, chain_id=31337)
    return ContributionProof.from_tree(tree, index, epoch=7)


def sample_indices(size: int) -> list[int]:
    return sorted({0, size // 2, size - 1, *range(0, size, max(1, size // 25))})


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_tree_matches_openzeppelin(run_oz, kind, size):
    tree, _entries, canonical, leaf_encoding = build_python(kind, size)

    reference = run_oz("build", {"leafEncoding": leaf_encoding, "values": canonical})

    assert tree.root == reference["root"]
    assert tree.proofs() == reference["proofs"]
    for index in sample_indices(size):
        assert tree.proof(index) == reference["proofs"][index]
    assert tree.dump() == reference["dump"]
    assert compact(tree.dump()) == compact(reference["dump"])


@pytest.mark.parametrize("size", [5, 1000])
@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_input_case_does_not_change_root(run_oz, kind, size):
    """The JavaScript library hashes lower-case and checksummed addresses alike."""
    tree, entries, _canonical, leaf_encoding = build_python(kind, size)
    raw_values = []
    for entry in entries:
        if kind == "claims":
            raw_values.append([entry[0], str(entry[1])])
        else:
            session_id, content_hash, contributor, points = entry
            raw_values.append(
                [
                    "0x" + session_id_to_bytes32(session_id).hex(),
                    "0x" + content_hash.hex(),
                    contributor,
                    str(points),
                ]
            )

    reference = run_oz("build", {"leafEncoding": leaf_encoding, "values": raw_values})

    assert tree.root == reference["root"]
    assert tree.proofs() == reference["proofs"]


@pytest.mark.parametrize("size", [1, 3, 1000])
@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_openzeppelin_loads_python_dump(run_oz, kind, size):
    tree, _entries, _canonical, _leaf_encoding = build_python(kind, size)

    reference = run_oz("load", tree.dump())

    assert reference["root"] == tree.root
    assert reference["proofs"] == tree.proofs()
    assert reference["dump"] == tree.dump()
    assert run_oz("verify", tree.dump()) is True


@pytest.mark.parametrize("size", [1, 2, 1000])
@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_python_loads_openzeppelin_dump(run_oz, kind, size):
    _tree, _entries, canonical, leaf_encoding = build_python(kind, size)
    reference = run_oz("build", {"leafEncoding": leaf_encoding, "values": canonical})

    loaded = StandardMerkleTree.load(reference["dump"])

    assert loaded.root == reference["root"]
    assert loaded.proofs() == reference["proofs"]
    assert loaded.dump() == reference["dump"]


@pytest.mark.parametrize("size", [1, 8, 1000])
@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_openzeppelin_verifies_python_proof_files(run_oz, kind, size):
    tree, _entries, _canonical, _leaf_encoding = build_python(kind, size)
    documents = [proof_document(kind, tree, index).to_dict() for index in sample_indices(size)]

    assert run_oz("verify", documents) == [True] * len(documents)
    for document in documents:
        assert verify_proof_file(document).valid


@pytest.mark.parametrize("kind", ["claims", "contributions"])
def test_openzeppelin_rejects_what_python_rejects(run_oz, kind):
    tree, _entries, _canonical, _leaf_encoding = build_python(kind, 8)
    good = proof_document(kind, tree, 3).to_dict()

    wrong_amount = json.loads(json.dumps(good))
    wrong_amount["value"][-1] = str(int(good["value"][-1]) + 1)
    wrong_root = dict(good, root="0x" + "11" * 32)
    wrong_proof = dict(good, proof=good["proof"][:-1])
    documents = [wrong_amount, wrong_root, wrong_proof]

    assert run_oz("verify", documents) == [False, False, False]
    for document in documents:
        assert not verify_proof_file(document).valid


def test_openzeppelin_rejects_tampered_dump(run_oz):
    tree, _entries, _canonical, _leaf_encoding = build_python("claims", 5)
    tampered = tree.dump()
    tampered["values"][0]["value"][1] = str(int(tampered["values"][0]["value"][1]) + 1)

    assert run_oz("verify", tampered) is False


def test_duplicate_values_match_openzeppelin(run_oz):
    """StandardMerkleTree.of accepts a value twice and keeps both in insertion order."""
    rng = random.Random(5)
    first, second = random_address(rng), random_address(rng)
    canonical = [[first, "7"], [second, "7"], [first, "7"], [first, "7"]]

    tree = StandardMerkleTree.of(
        [[address, int(amount)] for address, amount in canonical], CLAIM_LEAF_ENCODING
    )
    reference = run_oz("build", {"leafEncoding": list(CLAIM_LEAF_ENCODING), "values": canonical})

    assert tree.dump() == reference["dump"]
    assert tree.proofs() == reference["proofs"]


def test_render_matches_openzeppelin(run_oz):
    for size in [1, 2, 5, 8]:
        tree, _entries, _canonical, _leaf_encoding = build_python("claims", size)
        assert tree.render() == run_oz("render", tree.dump())


# Leaf encodings outside the two project trees: the first is encoded by hand, word by word,
# the second needs the eth_abi path because of dynamic types, arrays and a tuple.
STATIC_ENCODING = ["bool", "uint8", "int256", "bytes4", "address", "uint", "bytes32"]
DYNAMIC_ENCODING = ["string", "bytes", "uint16[]", "(address,uint256)", "bool[2]", "int8"]


def static_values(rng: random.Random, size: int) -> tuple[list[list], list[list]]:
    """Return Python values for STATIC_ENCODING and their canonical JSON values."""
    python_values = []
    canonical = []
    for index in range(size):
        flag = index % 2 == 0
        small = rng.randrange(256)
        signed = rng.randrange(-(2**255), 2**255)
        selector = rng.randbytes(4)
        address = random_address(rng)
        large = rng.randrange(2**256)
        word = rng.randbytes(32)
        python_values.append([flag, small, signed, selector, input_case(address, index), large, word])
        canonical.append(
            [
                flag,
                str(small),
                str(signed),
                "0x" + selector.hex(),
                address,
                str(large),
                "0x" + word.hex(),
            ]
        )
    return python_values, canonical


def dynamic_values(rng: random.Random, size: int) -> tuple[list[list], list[list]]:
    """Return Python values for DYNAMIC_ENCODING and their canonical JSON values."""
    python_values = []
    canonical = []
    for index in range(size):
        text = f"session {index} é ✓"
        blob = rng.randbytes(rng.randrange(0, 70))
        numbers = [rng.randrange(2**16) for _ in range(rng.randrange(0, 4))]
        address = random_address(rng)
        amount = rng.randrange(2**200)
        flags = [True, index % 3 == 0]
        small = rng.randrange(-128, 128)
        python_values.append(
            [text, blob, numbers, (input_case(address, index), amount), flags, small]
        )
        canonical.append(
            [
                text,
                "0x" + blob.hex(),
                [str(number) for number in numbers],
                [address, str(amount)],
                flags,
                str(small),
            ]
        )
    return python_values, canonical


@pytest.mark.parametrize(
    ("leaf_encoding", "make_values"),
    [(STATIC_ENCODING, static_values), (DYNAMIC_ENCODING, dynamic_values)],
    ids=["static", "dynamic"],
)
def test_other_leaf_encodings_match_openzeppelin(run_oz, leaf_encoding, make_values):
    python_values, canonical = make_values(random.Random(11), 13)

    tree = StandardMerkleTree.of(python_values, leaf_encoding)
    reference = run_oz("build", {"leafEncoding": leaf_encoding, "values": canonical})

    assert tree.root == reference["root"]
    assert tree.proofs() == reference["proofs"]
    assert tree.dump() == reference["dump"]
    assert StandardMerkleTree.load(reference["dump"]).root == reference["root"]
    for index, value in enumerate(canonical):
        assert verify(tree.root, leaf_encoding, value, reference["proofs"][index])
