"""Sign-In with Ethereum: layout round trips, strict parsing and signature verification."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from ledger.auth import (
    InvalidSiweMessage,
    SiweBadSignature,
    SiweChainMismatch,
    SiweDomainMismatch,
    SiweError,
    SiweExpired,
    SiweMessage,
    SiweNotYetValid,
    format_timestamp,
    new_nonce,
    parse,
    parse_timestamp,
    verify,
)

EXAMPLE_ADDRESS = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"

# The example message of EIP-4361, with its statement and resources.
EIP_EXAMPLE = (
    "example.com wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "I accept the ExampleOrg Terms of Service: https://example.com/tos\n"
    "\n"
    "URI: https://example.com/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: 32891756\n"
    "Issued At: 2021-09-30T16:25:24Z\n"
    "Resources:\n"
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    "- https://example.com/my-web2-claim.json"
)

MINIMAL_TEXT = (
    "localhost:8000 wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "\n"
    "URI: http://localhost:8000/v1/auth/siwe\n"
    "Version: 1\n"
    "Chain ID: 31337\n"
    "Nonce: abcdEFGH12345678\n"
    "Issued At: 2024-05-01T12:00:00Z"
)

DOMAIN = "ledger.example.org"
CHAIN_ID = 11155111
ISSUED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# A fixed throwaway key so that failures are reproducible.
SIGNER = Account.from_key("0x" + "4d" * 32)
OTHER_SIGNER = Account.from_key("0x" + "7a" * 32)


def make_message(**overrides: object) -> SiweMessage:
    fields: dict[str, object] = {
        "domain": DOMAIN,
        "address": SIGNER.address,
        "statement": "Sign in to Contributor Ledger.",
        "uri": f"https://{DOMAIN}/v1/auth/siwe",
        "chain_id": CHAIN_ID,
        "nonce": "Q7rT2mXk9LpA4sVb",
        "issued_at": format_timestamp(ISSUED),
        "expiration_time": format_timestamp(ISSUED + timedelta(minutes=10)),
    }
    fields.update(overrides)
    return SiweMessage(**fields)  # type: ignore[arg-type]


def sign(text: str, account=SIGNER) -> str:
    return Account.sign_message(encode_defunct(text=text), account.key).signature.hex()


def verify_at(text: str, signature: str, now: datetime, **overrides: object) -> SiweMessage:
    expected: dict[str, object] = {"expected_domain": DOMAIN, "expected_chain_id": CHAIN_ID}
    expected.update(overrides)
    return verify(text, signature, now=now, **expected)  # type: ignore[arg-type]


# --- Round trips -------------------------------------------------------------------------------


def test_eip_example_round_trips_byte_for_byte():
    message = parse(EIP_EXAMPLE)

    assert message.domain == "example.com"
    assert message.scheme is None
    assert message.address == EXAMPLE_ADDRESS
    assert message.statement == "I accept the ExampleOrg Terms of Service: https://example.com/tos"
    assert message.uri == "https://example.com/login"
    assert message.version == "1"
    assert message.chain_id == 1
    assert message.nonce == "32891756"
    assert message.issued_at_datetime == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert message.expiration_time is None
    assert message.not_before is None
    assert message.request_id is None
    assert message.resources == (
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
    )
    assert message.to_text() == EIP_EXAMPLE


def test_minimal_message_has_two_empty_lines():
    message = parse(MINIMAL_TEXT)

    assert message.statement is None
    assert message.resources is None
    assert message.chain_id == 31337
    assert message.to_text() == MINIMAL_TEXT


def test_all_optional_fields_round_trip():
    message = make_message(
        scheme="https",
        not_before=format_timestamp(ISSUED + timedelta(seconds=5)),
        request_id="req-42_a%2Fb",
        resources=[
            "https://ledger.example.org/terms",
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        ],
    )
    text = message.to_text()

    assert text.startswith(f"https://{DOMAIN} wants you to sign in with your Ethereum account:\n")
    assert text.splitlines()[-6:] == [
        "Expiration Time: 2024-05-01T12:10:00Z",
        "Not Before: 2024-05-01T12:00:05Z",
        "Request ID: req-42_a%2Fb",
        "Resources:",
        "- https://ledger.example.org/terms",
        "- ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    ]
    assert isinstance(message.resources, tuple)
    assert parse(text) == message
    assert parse(text).to_text() == text


@pytest.mark.parametrize(
    "overrides",
    [
        {"statement": ""},
        {"request_id": ""},
        {"resources": ()},
        {"statement": None, "expiration_time": None},
        {"domain": "[::1]:8000", "uri": "http://[::1]:8000/login"},
        {"domain": "127.0.0.1:8000", "uri": "urn:uuid:0f9a5bde-1f0c-4b5c-8d63-2f3e7c1b9a10"},
        {"issued_at": "2024-05-01T14:00:00.123456789+02:00"},
    ],
    ids=[
        "empty-statement",
        "empty-request-id",
        "empty-resources",
        "no-statement-no-expiry",
        "ipv6-domain",
        "urn-uri",
        "offset-nanoseconds",
    ],
)
def test_edge_values_round_trip(overrides):
    message = make_message(**overrides)
    text = message.to_text()

    assert parse(text) == message
    assert parse(text).to_text() == text


def test_absent_and_empty_statement_differ():
    without = make_message(statement=None).to_text()
    empty = make_message(statement="").to_text()

    assert f"{SIGNER.address}\n\n\nURI: " in without
    assert f"{SIGNER.address}\n\n\n\nURI: " in empty
    assert parse(without).statement is None
    assert parse(empty).statement == ""


def test_timestamp_keeps_text_and_offset():
    message = make_message(issued_at="2024-05-01T14:00:00.123456789+02:00")

    assert message.issued_at == "2024-05-01T14:00:00.123456789+02:00"
    assert message.issued_at_datetime == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


# --- Strict parsing ----------------------------------------------------------------------------

MALFORMED_CASES = [
    # (id, text, field, line)
    ("empty text", "", "domain", 1),
    (
        "header wording",
        EIP_EXAMPLE.replace("wants you to sign in", "wants you to log in"),
        "domain",
        1,
    ),
    ("bad domain", EIP_EXAMPLE.replace("example.com wants", "exa mple.com wants"), "domain", 1),
    ("bad scheme", "1https://" + EIP_EXAMPLE, "scheme", 1),
    ("header only", EIP_EXAMPLE.split("\n")[0], "address", 2),
    (
        "lowercase address",
        EIP_EXAMPLE.replace(EXAMPLE_ADDRESS, EXAMPLE_ADDRESS.lower()),
        "address",
        2,
    ),
    (
        "wrong checksum",
        EIP_EXAMPLE.replace(EXAMPLE_ADDRESS, EXAMPLE_ADDRESS[:-3] + "cC2"),
        "address",
        2,
    ),
    ("short address", EIP_EXAMPLE.replace("756Cc2\n", "756C\n"), "address", 2),
    ("missing empty line after address", EIP_EXAMPLE.replace("Cc2\n\n", "Cc2\n", 1), "message", 3),
    (
        "statement without closing empty line",
        EIP_EXAMPLE.replace("/tos\n\n", "/tos\n"),
        "message",
        5,
    ),
    (
        "one empty line without statement",
        MINIMAL_TEXT.replace("\n\n\nURI", "\n\nURI"),
        "message",
        4,
    ),
    ("statement with quote", EIP_EXAMPLE.replace("I accept", 'I "accept"'), "statement", 4),
    ("missing uri line", EIP_EXAMPLE.replace("URI: https://example.com/login\n", ""), "uri", 6),
    ("relative uri", EIP_EXAMPLE.replace("URI: https://", "URI: //"), "uri", 6),
    ("missing version line", EIP_EXAMPLE.replace("Version: 1\n", ""), "version", 7),
    ("version 2", EIP_EXAMPLE.replace("Version: 1", "Version: 2"), "version", 7),
    ("chain id not a number", EIP_EXAMPLE.replace("Chain ID: 1", "Chain ID: one"), "chain-id", 8),
    ("chain id leading zero", EIP_EXAMPLE.replace("Chain ID: 1", "Chain ID: 01"), "chain-id", 8),
    ("missing nonce line", EIP_EXAMPLE.replace("Nonce: 32891756\n", ""), "nonce", 9),
    ("short nonce", EIP_EXAMPLE.replace("Nonce: 32891756", "Nonce: 3289175"), "nonce", 9),
    ("nonce with symbol", EIP_EXAMPLE.replace("Nonce: 32891756", "Nonce: 32891756-x"), "nonce", 9),
    (
        "timestamp without zone",
        EIP_EXAMPLE.replace("2021-09-30T16:25:24Z", "2021-09-30T16:25:24"),
        "issued-at",
        10,
    ),
    (
        "timestamp with space",
        EIP_EXAMPLE.replace("2021-09-30T16:25:24Z", "2021-09-30 16:25:24Z"),
        "issued-at",
        10,
    ),
    (
        "impossible date",
        EIP_EXAMPLE.replace("2021-09-30T16:25:24Z", "2021-02-30T16:25:24Z"),
        "issued-at",
        10,
    ),
    (
        "bad expiration time",
        MINIMAL_TEXT + "\nExpiration Time: tomorrow",
        "expiration-time",
        10,
    ),
    (
        "optional lines out of order",
        MINIMAL_TEXT + "\nNot Before: 2024-05-01T12:00:00Z\nExpiration Time: 2024-05-01T13:00:00Z",
        "message",
        11,
    ),
    (
        "repeated optional line",
        MINIMAL_TEXT + "\nRequest ID: a\nRequest ID: b",
        "message",
        11,
    ),
    ("unknown line", MINIMAL_TEXT + "\nColor: blue", "message", 10),
    ("resource without dash", EIP_EXAMPLE + "\nhttps://example.com/x", "resources", 14),
    ("resource not a uri", EIP_EXAMPLE + "\n- not a uri", "resources", 14),
    ("trailing line break", EIP_EXAMPLE + "\n", "message", 13),
    ("carriage returns", EIP_EXAMPLE.replace("\n", "\r\n"), "message", 1),
]


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [case[1:] for case in MALFORMED_CASES],
    ids=[case[0] for case in MALFORMED_CASES],
)
def test_malformed_message_names_field_and_line(text, field, line):
    with pytest.raises(InvalidSiweMessage) as caught:
        parse(text)

    assert caught.value.field == field
    assert caught.value.line == line
    assert caught.value.code == "siwe_malformed"
    assert f"line {line} ({field})" in str(caught.value)


def test_bad_checksum_error_suggests_checksummed_form():
    text = EIP_EXAMPLE.replace(EXAMPLE_ADDRESS, EXAMPLE_ADDRESS.lower())

    with pytest.raises(InvalidSiweMessage, match=f"expected {EXAMPLE_ADDRESS}"):
        parse(text)


def test_oversized_message_rejected():
    text = MINIMAL_TEXT + "\nResources:" + "\n- https://example.com/resource" * 1000

    with pytest.raises(InvalidSiweMessage) as caught:
        parse(text)

    assert caught.value.field == "message"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"address": SIGNER.address.lower()}, "address"),
        ({"statement": "two\nlines"}, "statement"),
        ({"nonce": "short"}, "nonce"),
        ({"chain_id": -1}, "chain-id"),
        ({"chain_id": True}, "chain-id"),
        ({"version": "2"}, "version"),
        ({"scheme": "ht tps"}, "scheme"),
        ({"domain": ""}, "domain"),
        ({"domain": "[not-ipv6]"}, "domain"),
        ({"uri": "no scheme"}, "uri"),
        ({"not_before": "2024-05-01"}, "not-before"),
        ({"issued_at": "2024-05-01T23:59:60Z"}, "issued-at"),
        ({"request_id": "has space"}, "request-id"),
        ({"resources": ["https://ok.example/", "bad uri"]}, "resources"),
    ],
)
def test_constructor_rejects_invalid_field(overrides, field):
    with pytest.raises(InvalidSiweMessage) as caught:
        make_message(**overrides)

    assert caught.value.field == field
    assert caught.value.line is None


def test_parse_requires_str():
    with pytest.raises(TypeError):
        parse(EIP_EXAMPLE.encode())  # type: ignore[arg-type]


# --- Timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T08:30:00-03:30", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00-00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5Z", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts_rfc3339(text, expected):
    parsed = parse_timestamp("issued-at", text)

    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T12:00:00+24:00", "2024-13-01T12:00:00Z", "2024-05-01T12:00Z", "20240501T120000Z"],
)
def test_parse_timestamp_rejects_invalid(text):
    with pytest.raises(InvalidSiweMessage) as caught:
        parse_timestamp("expiration-time", text)

    assert caught.value.field == "expiration-time"


def test_format_timestamp_converts_to_utc():
    moment = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    assert format_timestamp(moment) == "2024-05-01T12:00:00Z"
    assert format_timestamp(moment.replace(microsecond=250)) == "2024-05-01T12:00:00.000250Z"


def test_format_timestamp_rejects_naive():
    with pytest.raises(ValueError, match="aware"):
        format_timestamp(datetime(2024, 5, 1, 12))


# --- Verification ------------------------------------------------------------------------------


def test_signed_message_verifies():
    text = make_message().to_text()

    message = verify_at(text, sign(text), ISSUED + timedelta(minutes=1))

    assert message.address == SIGNER.address
    assert message.nonce == "Q7rT2mXk9LpA4sVb"
    assert message == parse(text)


def test_signature_forms_accepted():
    text = make_message().to_text()
    signature = bytes.fromhex(sign(text).removeprefix("0x"))
    low_v = signature[:64] + bytes([signature[64] - 27])
    now = ISSUED + timedelta(minutes=1)

    forms = (signature.hex(), "0x" + signature.hex(), "0x" + low_v.hex(), signature.hex().upper())
    for form in forms:
        assert verify_at(text, form, now).address == SIGNER.address


@pytest.mark.parametrize(
    ("original", "tampered"),
    [
        ("Nonce: Q7rT2mXk9LpA4sVb", "Nonce: Q7rT2mXk9LpA4sVc"),
        ("Chain ID: 11155111", "Chain ID: 1"),
        ("Expiration Time: 2024-05-01T12:10:00Z", "Expiration Time: 2034-05-01T12:10:00Z"),
    ],
)
def test_tampered_text_fails_signature(original, tampered):
    text = make_message().to_text()
    signature = sign(text)
    changed = text.replace(original, tampered)
    assert changed != text

    now = ISSUED + timedelta(minutes=1)
    with pytest.raises(SiweBadSignature) as caught:
        verify_at(changed, signature, now, expected_chain_id=parse(changed).chain_id)

    assert caught.value.code == "siwe_bad_signature"


def test_signature_by_other_account_fails():
    text = make_message().to_text()

    with pytest.raises(SiweBadSignature, match=OTHER_SIGNER.address):
        verify_at(text, sign(text, OTHER_SIGNER), ISSUED + timedelta(minutes=1))


@pytest.mark.parametrize(
    "signature",
    ["", "0x", "0x1234", "zz" * 65, "0x" + "00" * 65, "0x" + "11" * 64 + "05", "0x" + "11" * 66],
    ids=["empty", "prefix-only", "short", "not-hex", "zero", "bad-v", "long"],
)
def test_malformed_signature_fails(signature):
    text = make_message().to_text()

    with pytest.raises(SiweBadSignature):
        verify_at(text, signature, ISSUED + timedelta(minutes=1))


def test_wrong_domain_raises_domain_mismatch():
    text = make_message(domain="evil.example", uri="https://evil.example/login").to_text()

    with pytest.raises(SiweDomainMismatch) as caught:
        verify_at(text, sign(text), ISSUED + timedelta(minutes=1))

    assert caught.value.code == "siwe_domain_mismatch"


def test_domain_port_must_match():
    text = make_message(domain=f"{DOMAIN}:8443").to_text()

    with pytest.raises(SiweDomainMismatch):
        verify_at(text, sign(text), ISSUED + timedelta(minutes=1))


def test_wrong_chain_raises_chain_mismatch():
    text = make_message(chain_id=1).to_text()

    with pytest.raises(SiweChainMismatch) as caught:
        verify_at(text, sign(text), ISSUED + timedelta(minutes=1))

    assert caught.value.code == "siwe_chain_mismatch"


def test_expired_message_raises_expired():
    text = make_message().to_text()
    signature = sign(text)
    expiration = ISSUED + timedelta(minutes=10)

    just_before = expiration - timedelta(microseconds=1)
    assert verify_at(text, signature, just_before).address == SIGNER.address
    for now in (expiration, expiration + timedelta(days=1)):
        with pytest.raises(SiweExpired) as caught:
            verify_at(text, signature, now)
        assert caught.value.code == "siwe_expired"


def test_not_before_raises_not_yet_valid():
    not_before = ISSUED + timedelta(minutes=2)
    text = make_message(not_before=format_timestamp(not_before)).to_text()
    signature = sign(text)

    with pytest.raises(SiweNotYetValid) as caught:
        verify_at(text, signature, not_before - timedelta(seconds=1))

    assert caught.value.code == "siwe_not_yet_valid"
    assert verify_at(text, signature, not_before).address == SIGNER.address


def test_message_without_expiration_verifies_later():
    text = make_message(expiration_time=None).to_text()

    assert verify_at(text, sign(text), ISSUED + timedelta(days=365)).address == SIGNER.address


def test_verify_rejects_malformed_text():
    text = make_message().to_text() + "\n"

    with pytest.raises(InvalidSiweMessage) as caught:
        verify_at(text, sign(text), ISSUED + timedelta(minutes=1))

    assert caught.value.code == "siwe_malformed"


def test_verify_requires_aware_now():
    text = make_message().to_text()

    with pytest.raises(ValueError, match="aware"):
        verify_at(text, sign(text), datetime(2024, 5, 1, 12, 1))


def test_error_codes_are_distinct_siwe_errors():
    classes = [
        InvalidSiweMessage,
        SiweBadSignature,
        SiweDomainMismatch,
        SiweChainMismatch,
        SiweExpired,
        SiweNotYetValid,
    ]

    assert all(issubclass(cls, SiweError) for cls in classes)
    assert len({cls.code for cls in classes}) == len(classes)
    assert all(cls.code.startswith("siwe_") for cls in classes)


def test_message_is_frozen():
    message = make_message()

    with pytest.raises(AttributeError):
        message.nonce = "x" * 16  # type: ignore[misc]
    assert replace(message, nonce="Zz" * 8).nonce == "Zz" * 8


# --- Nonces ------------------------------------------------------------------------------------


def test_new_nonce_is_long_alphanumeric_and_fresh():
    nonces = {new_nonce() for _ in range(200)}

    assert len(nonces) == 200
    for nonce in nonces:
        assert len(nonce) >= 16
        assert nonce.isascii()
        assert nonce.isalnum()
        assert make_message(nonce=nonce).nonce == nonce


def test_new_nonce_rejects_short_length():
    assert len(new_nonce(32)) == 32
    with pytest.raises(ValueError):
        new_nonce(8)
