"""Scoped API keys and contributor bearer tokens."""

import hashlib
import re

import pytest

from ledger.auth import (
    InvalidApiKey,
    Scope,
    generate_api_key,
    hash_api_key,
    hash_token,
    new_bearer_token,
    parse_api_key,
    parse_scopes,
    verify_api_key,
)

KEY_RE = re.compile(r"lk_([0-9a-f]{16})_([0-9a-f]{64})")


def test_generated_key_has_documented_form():
    key, key_id = generate_api_key()

    match = KEY_RE.fullmatch(key)
    assert match is not None
    assert match.group(1) == key_id


def test_generated_keys_are_unique():
    keys = [generate_api_key() for _ in range(100)]

    assert len({key for key, _ in keys}) == 100
    assert len({key_id for _, key_id in keys}) == 100


def test_custom_prefix():
    key, key_id = generate_api_key(prefix="lkadmin")

    assert key.startswith(f"lkadmin_{key_id}_")
    assert parse_api_key(key, prefix="lkadmin")[0] == key_id
    with pytest.raises(InvalidApiKey, match="prefix"):
        parse_api_key(key)


@pytest.mark.parametrize("prefix", ["", "LK", "l_k", "1lk", "a" * 17])
def test_invalid_prefix_rejected(prefix):
    with pytest.raises(ValueError, match="prefix"):
        generate_api_key(prefix=prefix)


def test_parse_round_trip():
    key, key_id = generate_api_key()

    parsed_id, secret = parse_api_key(key)

    assert parsed_id == key_id
    assert key == f"lk_{key_id}_{secret}"


def test_hash_is_sha256_of_secret():
    key, _ = generate_api_key()
    _, secret = parse_api_key(key)

    stored = hash_api_key(key)

    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert secret not in stored


def test_verify_matches_only_own_hash():
    key, _ = generate_api_key()
    other_key, _ = generate_api_key()

    assert verify_api_key(key, hash_api_key(key))
    assert not verify_api_key(key, hash_api_key(other_key))
    assert not verify_api_key(other_key, hash_api_key(key))


def test_changed_secret_does_not_verify():
    key, _ = generate_api_key()
    stored = hash_api_key(key)
    last = key[-1]
    changed = key[:-1] + ("0" if last != "0" else "1")

    assert not verify_api_key(changed, stored)


VALID_KEY = "lk_0123456789abcdef_" + "ab" * 32

MALFORMED_KEYS = [
    ("empty", ""),
    ("prefix only", "lk"),
    ("two parts", "lk_0123456789abcdef"),
    ("four parts", VALID_KEY + "_extra"),
    ("wrong prefix", VALID_KEY.replace("lk_", "xk_", 1)),
    ("uppercase id", VALID_KEY.replace("abcdef_", "ABCDEF_", 1)),
    ("short id", VALID_KEY.replace("0123456789abcdef", "0123")),
    ("short secret", VALID_KEY[:-2]),
    ("long secret", VALID_KEY + "ab"),
    ("non-hex secret", VALID_KEY[:-2] + "zz"),
    ("surrounding space", " " + VALID_KEY),
    ("bearer prefix", "Bearer " + VALID_KEY),
]


@pytest.mark.parametrize(
    "key", [case[1] for case in MALFORMED_KEYS], ids=[case[0] for case in MALFORMED_KEYS]
)
def test_malformed_key_rejected_without_echo(key):
    with pytest.raises(InvalidApiKey) as caught:
        parse_api_key(key)

    assert "ab" * 32 not in str(caught.value)
    assert "malformed API key" in str(caught.value)
    with pytest.raises(InvalidApiKey):
        hash_api_key(key)
    with pytest.raises(InvalidApiKey):
        verify_api_key(key, "0" * 64)


def test_valid_example_key_parses():
    assert parse_api_key(VALID_KEY) == ("0123456789abcdef", "ab" * 32)


def test_non_str_key_rejected():
    with pytest.raises(InvalidApiKey):
        parse_api_key(VALID_KEY.encode())  # type: ignore[arg-type]


def test_invalid_api_key_is_value_error():
    assert issubclass(InvalidApiKey, ValueError)


def test_scope_values():
    assert Scope.sessions_write == "sessions_write"
    assert Scope.admin == "admin"
    assert {scope.value for scope in Scope} == {"sessions_write", "admin"}
    assert Scope("admin") is Scope.admin


def test_parse_scopes():
    assert parse_scopes(["admin", "sessions_write", "admin"]) == frozenset(
        {Scope.admin, Scope.sessions_write}
    )
    assert parse_scopes([]) == frozenset()


def test_parse_scopes_rejects_unknown():
    with pytest.raises(ValueError, match="unknown scope 'sessions:read'.*sessions_write"):
        parse_scopes(["sessions_write", "sessions:read"])


def test_bearer_tokens_are_random_urlsafe():
    tokens = {new_bearer_token() for _ in range(100)}

    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_hash_token_is_stable_sha256():
    token = new_bearer_token()

    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token(new_bearer_token())
    assert token not in hash_token(token)
