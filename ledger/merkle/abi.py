"""ABI types of leaf values: validation, canonical JSON form and `abi.encode` bytes.

Every leaf value has a canonical JSON form. It is what tree dumps and proof files contain and
what we hand to `@openzeppelin/merkle-tree`, which keeps values exactly as given:

    address        EIP-55 checksummed string
    uintN, intN    decimal string ("-5" for a negative intN)
    bytesN, bytes  0x-prefixed lower-case hex
    bool           JSON true or false
    string         the string itself
    T[] and T[k]   a list of the canonical items
    (T1,T2,...)    a list of the canonical components

A leaf encoding made only of address, bool, uintN, intN and bytesN is encoded here by hand, one
32-byte word per value, which is what `abi.encode` produces for static types. Any other leaf
encoding (dynamic types, arrays, tuples) is encoded with `eth_abi`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat
from typing import Any

import eth_abi
from eth_abi.exceptions import ABITypeError, EncodingError, ParseError
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from sha3 import keccak_256

from ledger.merkle.errors import InvalidLeafEncoding, InvalidLeafValue

_ZERO_WORD = bytes(32)
_TRUE_WORD = bytes(31) + b"\x01"

_ADDRESS_PATTERN = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_PATTERN = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
# 2**256 has 78 decimal digits. The bound also keeps int() away from its 4300-digit limit.
_UNSIGNED_DECIMAL_PATTERN = re.compile(r"[0-9]{1,78}")
_SIGNED_DECIMAL_PATTERN = re.compile(r"-?[0-9]{1,78}")
# `uint` and `int` without a size mean 256 bits, in Solidity and in @metamask/abi-utils.
_INTEGER_ALIAS_PATTERN = re.compile(r"\b(u?int)(?![0-9])")

# EIP-55 upper-cases the hex letter at position i when nibble i of keccak256(lower-case hex) is
# 8 or more. These tables turn that rule into whole-string operations (see to_checksum_address).
_HIGH_NIBBLE_TO_CASE_BIT = bytes.maketrans(b"0123456789abcdef", b"\x00" * 8 + b"\x20" * 8)
_LETTER_TO_CASE_BIT = bytes.maketrans(b"0123456789abcdef", b"\x00" * 10 + b"\x20" * 6)


def to_checksum_address(address: str) -> str:
    """Return `address` in EIP-55 checksum case.

    Accepts any case, but a mixed-case input must already carry a valid checksum, because a
    wrong mixed case usually means a mistyped address. Raise InvalidLeafValue otherwise.
    """
    if not isinstance(address, str) or _ADDRESS_PATTERN.fullmatch(address) is None:
        raise InvalidLeafValue(
            f"invalid address {address!r}: expected 0x followed by 40 hex digits"
        )
    body = address[2:]
    lower = body.lower().encode("ascii")
    digest_hex = keccak_256(lower).hexdigest()[:40].encode("ascii")

    # A hex letter is upper-cased by clearing its 0x20 bit. The mask has that bit set exactly
    # where the character is a letter and the matching hash nibble is 8 or more.
    high_nibbles = int.from_bytes(digest_hex.translate(_HIGH_NIBBLE_TO_CASE_BIT), "big")
    letters = int.from_bytes(lower.translate(_LETTER_TO_CASE_BIT), "big")
    checksummed_ascii = int.from_bytes(lower, "big") ^ (high_nibbles & letters)
    checksummed = checksummed_ascii.to_bytes(40, "big").decode("ascii")

    if body != checksummed and body != body.lower() and body != body.upper():
        raise InvalidLeafValue(
            f"invalid address {address!r}: the mixed case does not match the EIP-55 checksum "
            f"(expected 0x{checksummed})"
        )
    return "0x" + checksummed



def to_checksum_addresses(addresses: Sequence[Any]) -> list[str]:
    """Return every address in EIP-55 checksum case, like to_checksum_address on each.

    Raise InvalidLeafValue, naming the first invalid address, as the single form does.
    """
    return _checksum_many(addresses)[0]


def _checksum_many(addresses: Sequence[Any]) -> tuple[list[str], bytes]:
    """Return the checksummed addresses and their 20-byte forms concatenated.

    The work runs in C-level passes over all addresses at once. The 0x prefixes are checked on
    the joined text and the hex digits by decoding them. Then comes one keccak256 per address,
    and the case rule of to_checksum_address is applied to all addresses as one big integer.
    Input that fails a check goes to to_checksum_address one address at a time, for the error.
    """
    count = len(addresses)
    joined = "".join(addresses) if set(map(type, addresses)) == {str} else ""
    if (
        not count
        or len(joined) != 42 * count
        or set(map(len, addresses)) != {42}
        or joined[0::42] != "0" * count
        or joined[1::42] != "x" * count
        or not joined.isascii()
    ):
        checksummed = list(map(to_checksum_address, addresses))
        return checksummed, bytes.fromhex("".join([address[2:] for address in checksummed]))

    lower_joined = joined.lower().encode("ascii")
    lower_bodies = [lower_joined[start + 2 : start + 42] for start in range(0, len(lower_joined), 42)]
    lower = b"".join(lower_bodies)
    try:
        raw = bytes.fromhex(lower.decode("ascii"))
    except ValueError:
        raw = b""
    # bytes.fromhex skips whitespace, so a short result also means a character was not hex.
    if len(raw) != 20 * count:
        checksummed = list(map(to_checksum_address, addresses))
        return checksummed, bytes.fromhex("".join([address[2:] for address in checksummed]))

    first_20 = slice(0, 20)
    digest_hex = b"".join(
        [digest[first_20] for digest in map(keccak_256.digest, map(keccak_256, lower_bodies))]
    ).hex().encode("ascii")
    high_nibbles = int.from_bytes(digest_hex.translate(_HIGH_NIBBLE_TO_CASE_BIT), "big")
    letters = int.from_bytes(lower.translate(_LETTER_TO_CASE_BIT), "big")
    checksummed_ascii = int.from_bytes(lower, "big") ^ (high_nibbles & letters)
    checksummed_joined = checksummed_ascii.to_bytes(len(lower), "big").decode("ascii")
    checksummed = ["0x" + checksummed_joined[start : start + 40] for start in range(0, len(lower), 40)]

    # Inputs in checksum case match as they are. Any other input must be all lower or all
    # upper case, and to_checksum_address raises the usual error for a wrong mixed case.
    if list(addresses) != checksummed:
        for address, expected in zip(addresses, checksummed):
            if address != expected:
                to_checksum_address(address)
    return checksummed, raw


def _parse_hex(value: str, expected_size: int | None) -> bytes:
    if _HEX_PATTERN.fullmatch(value) is None:
        raise InvalidLeafValue(f"invalid hex string {value!r}: expected 0x and an even number of hex digits")
    raw = bytes.fromhex(value[2:])
    if expected_size is not None and len(raw) != expected_size:
        raise InvalidLeafValue(f"expected {expected_size} bytes, got {len(raw)} in {value!r}")
    return raw


def _to_bytes(value: Any, expected_size: int | None) -> bytes:
    if isinstance(value, str):
        return _parse_hex(value, expected_size)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if expected_size is not None and len(raw) != expected_size:
            raise InvalidLeafValue(f"expected {expected_size} bytes, got {len(raw)}")
        return raw
    raise InvalidLeafValue(f"expected bytes or a 0x-hex string, got {type(value).__name__}")


class _Codec:
    """Validation and encoding of one ABI type.

    `canonical` turns an accepted input into the canonical JSON form. With `strict`, integers
    must be Python ints; without it (values read from JSON), decimal strings are accepted too.
    Codecs with `word_sized` set also implement `canonical_and_word`, which returns the
    canonical form together with the 32-byte `abi.encode` word.
    """

    word_sized = False

    def canonical(self, value: Any, strict: bool) -> Any:
        raise NotImplementedError

    def canonical_and_word(self, value: Any, strict: bool) -> tuple[Any, bytes]:
        raise NotImplementedError

    def canonical_and_words(self, items: Sequence[Any], strict: bool) -> tuple[Sequence[Any], Sequence[bytes]]:
        """Return the canonical forms and `abi.encode` words of many items, in order.

        Subclasses replace this with whole-column work where they can. Raise InvalidLeafValue
        for the first invalid item.
        """
        canonical, words = zip(*map(self.canonical_and_word, items, repeat(strict)))
        return canonical, words

    def to_eth_abi(self, canonical: Any) -> Any:
        """Return the canonical value in the Python form that `eth_abi.encode` takes."""
        return canonical


class _AddressCodec(_Codec):
    word_sized = True

    def canonical(self, value: Any, strict: bool) -> str:
        return to_checksum_address(value)

    def canonical_and_word(self, value: Any, strict: bool) -> tuple[str, bytes]:
        checksummed = to_checksum_address(value)
        return checksummed, bytes(12) + bytes.fromhex(checksummed[2:])

    def canonical_and_words(self, items: Sequence[Any], strict: bool) -> tuple[list[str], list[bytes]]:
        checksummed, raw = _checksum_many(items)
        padding = bytes(12)
        return checksummed, [padding + raw[start : start + 20] for start in range(0, len(raw), 20)]


class _BoolCodec(_Codec):
    word_sized = True

    def canonical(self, value: Any, strict: bool) -> bool:
        if not isinstance(value, bool):
            raise InvalidLeafValue(f"expected a bool, got {type(value).__name__} {value!r}")
        return value

    def canonical_and_word(self, value: Any, strict: bool) -> tuple[bool, bytes]:
        flag = self.canonical(value, strict)
        return flag, _TRUE_WORD if flag else _ZERO_WORD


class _IntegerCodec(_Codec):
    word_sized = True

    def __init__(self, bits: int, signed: bool) -> None:
        self.signed = signed
        if signed:
            self.minimum = -(2 ** (bits - 1))
            self.maximum = 2 ** (bits - 1) - 1
        else:
            self.minimum = 0
            self.maximum = 2**bits - 1
        self.type_name = f"{'int' if signed else 'uint'}{bits}"
        self.pattern = _SIGNED_DECIMAL_PATTERN if signed else _UNSIGNED_DECIMAL_PATTERN

    def to_int(self, value: Any, strict: bool) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidLeafValue(f"expected an int, got {type(value).__name__} {value!r}")
        if isinstance(value, str):
            if strict:
                raise InvalidLeafValue(f"expected an int, got the string {value!r}")
            if self.pattern.fullmatch(value) is None:
                raise InvalidLeafValue(f"invalid decimal string {value!r} for {self.type_name}")
            value = int(value)
        if not self.minimum <= value <= self.maximum:
            raise InvalidLeafValue(
                f"{value} is out of range for {self.type_name} "
                f"({self.minimum} to {self.maximum})"
            )
        return int(value)

    def canonical(self, value: Any, strict: bool) -> str:
        return str(self.to_int(value, strict))

    def canonical_and_word(self, value: Any, strict: bool) -> tuple[str, bytes]:
        number = self.to_int(value, strict)
        return str(number), number.to_bytes(32, "big", signed=self.signed)

    def canonical_and_words(self, items: Sequence[Any], strict: bool) -> tuple[Sequence[str], Sequence[bytes]]:
        # The whole-column path takes plain ints (not bool) in range; anything else, such as
        # decimal strings, goes item by item.
        if (
            self.signed
            or not items
            or not all(type(item) is int for item in items)
            or min(items) < self.minimum
            or max(items) > self.maximum
        ):
            return super().canonical_and_words(items, strict)
        return list(map(str, items)), list(map(int.to_bytes, items, repeat(32), repeat("big")))

    def to_eth_abi(self, canonical: str) -> int:
        return int(canonical)


class _FixedBytesCodec(_Codec):
    word_sized = True

    def __init__(self, size: int) -> None:
        self.size = size

    def canonical(self, value: Any, strict: bool) -> str:
        return "0x" + _to_bytes(value, self.size).hex()

    def canonical_and_word(self, value: Any, strict: bool) -> tuple[str, bytes]:
        raw = _to_bytes(value, self.size)
        return "0x" + raw.hex(), raw.ljust(32, b"\x00")

    def canonical_and_words(self, items: Sequence[Any], strict: bool) -> tuple[Sequence[str], Sequence[bytes]]:
        if self.size != 32 or not all(type(item) is bytes and len(item) == 32 for item in items):
            return super().canonical_and_words(items, strict)
        return ["0x" + item.hex() for item in items], items

    def to_eth_abi(self, canonical: str) -> bytes:
        return bytes.fromhex(canonical[2:])


class _DynamicBytesCodec(_Codec):
    def canonical(self, value: Any, strict: bool) -> str:
        return "0x" + _to_bytes(value, None).hex()

    def to_eth_abi(self, canonical: str) -> bytes:
        return bytes.fromhex(canonical[2:])


class _StringCodec(_Codec):
    def canonical(self, value: Any, strict: bool) -> str:
        if not isinstance(value, str):
            raise InvalidLeafValue(f"expected a str, got {type(value).__name__}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidLeafValue(f"string is not encodable as UTF-8: {error}") from None
        return value


def _check_sequence(value: Any, length: int | None, type_name: str) -> None:
    if not isinstance(value, (list, tuple)):
        raise InvalidLeafValue(f"expected a list for {type_name}, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise InvalidLeafValue(f"expected {length} items for {type_name}, got {len(value)}")


class _ArrayCodec(_Codec):
    def __init__(self, item: _Codec, length: int | None, type_name: str) -> None:
        self.item = item
        self.length = length
        self.type_name = type_name

    def canonical(self, value: Any, strict: bool) -> list[Any]:
        _check_sequence(value, self.length, self.type_name)
        return [self.item.canonical(item, strict) for item in value]

    def to_eth_abi(self, canonical: list[Any]) -> list[Any]:
        return [self.item.to_eth_abi(item) for item in canonical]


class _TupleCodec(_Codec):
    def __init__(self, components: list[_Codec], type_name: str) -> None:
        self.components = components
        self.type_name = type_name

    def canonical(self, value: Any, strict: bool) -> list[Any]:
        _check_sequence(value, len(self.components), self.type_name)
        return [codec.canonical(item, strict) for codec, item in zip(self.components, value)]

    def to_eth_abi(self, canonical: list[Any]) -> tuple[Any, ...]:
        return tuple(codec.to_eth_abi(item) for codec, item in zip(self.components, canonical))


def _build_codec(abi_type: ABIType) -> _Codec:
    if abi_type.is_array:
        dimension = abi_type.arrlist[-1]
        length = dimension[0] if dimension else None
        return _ArrayCodec(_build_codec(abi_type.item_type), length, abi_type.to_type_str())

    if isinstance(abi_type, TupleType):
        components = [_build_codec(component) for component in abi_type.components]
        return _TupleCodec(components, abi_type.to_type_str())

    assert isinstance(abi_type, BasicType)
    base, sub = abi_type.base, abi_type.sub
    if base == "address":
        return _AddressCodec()
    if base == "bool":
        return _BoolCodec()
    if base in ("uint", "int"):
        return _IntegerCodec(256 if sub is None else sub, signed=base == "int")
    if base == "bytes":
        return _DynamicBytesCodec() if sub is None else _FixedBytesCodec(sub)
    if base == "string":
        return _StringCodec()
    raise InvalidLeafEncoding(
        f"unsupported ABI type {abi_type.to_type_str()!r}: use address, bool, uintN, intN, "
        "bytesN, bytes, string, arrays or tuples of these"
    )


def _expand_integer_aliases(type_str: str) -> str:
    return _INTEGER_ALIAS_PATTERN.sub(r"\g<1>256", type_str)


def _parse_type(type_str: Any) -> tuple[ABIType, _Codec]:
    if not isinstance(type_str, str):
        raise InvalidLeafEncoding(f"an ABI type must be a string, got {type(type_str).__name__}")
    try:
        abi_type = parse(_expand_integer_aliases(type_str))
        abi_type.validate()
    except (ParseError, ABITypeError) as error:
        raise InvalidLeafEncoding(f"invalid ABI type {type_str!r}: {error}") from None
    return abi_type, _build_codec(abi_type)


class LeafEncoding:
    """A validated list of ABI types, one per position of a leaf value.

    The type strings are kept exactly as given, because tree dumps must repeat them unchanged.
    """

    __slots__ = ("types", "_codecs", "_eth_abi_types", "word_sized", "flat")

    def __init__(self, types: Sequence[str]) -> None:
        if isinstance(types, str) or not isinstance(types, Sequence):
            raise InvalidLeafEncoding(f"a leaf encoding must be a list of ABI types, got {types!r}")
        if len(types) == 0:
            raise InvalidLeafEncoding("a leaf encoding needs at least one ABI type")
        parsed = [_parse_type(type_str) for type_str in types]
        self.types: tuple[str, ...] = tuple(types)
        self._codecs = [codec for _, codec in parsed]
        self._eth_abi_types = [abi_type.to_type_str() for abi_type, _ in parsed]
        #: True when every position encodes to one 32-byte word, so encoding skips eth_abi.
        self.word_sized = all(codec.word_sized for codec in self._codecs)
        #: True when canonical values are flat lists of immutable items.
        self.flat = all(
            not isinstance(codec, (_ArrayCodec, _TupleCodec)) for codec in self._codecs
        )

    def __repr__(self) -> str:
        return f"LeafEncoding({list(self.types)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LeafEncoding) and other.types == self.types

    def __hash__(self) -> int:
        return hash(self.types)

    def _check_width(self, value: Any) -> None:
        if not isinstance(value, (list, tuple)):
            raise InvalidLeafValue(
                f"a leaf value must be a list or tuple of {len(self.types)} items, "
                f"got {type(value).__name__}"
            )
        if len(value) != len(self.types):
            raise InvalidLeafValue(
                f"a leaf value must have {len(self.types)} items for {list(self.types)}, "
                f"got {len(value)}"
            )

    def _located(self, error: InvalidLeafValue, position: int) -> InvalidLeafValue:
        return InvalidLeafValue(f"position {position} ({self.types[position]}): {error}")

    def canonical(self, value: Any, *, strict: bool = False) -> list[Any]:
        """Validate `value` and return its canonical JSON form.

        Raise InvalidLeafValue when an item does not match its type.
        """
        self._check_width(value)
        result = []
        for position, (codec, item) in enumerate(zip(self._codecs, value)):
            try:
                result.append(codec.canonical(item, strict))
            except InvalidLeafValue as error:
                raise self._located(error, position) from None
        return result

    def encode(self, canonical: Sequence[Any]) -> bytes:
        """Return `abi.encode(values)` for a value already in canonical form.

        The fast path builds one word per position; other encodings go through `eth_abi`.
        """
        if self.word_sized:
            return b"".join(
                codec.canonical_and_word(item, False)[1]
                for codec, item in zip(self._codecs, canonical)
            )
        return self.encode_with_eth_abi(canonical)

    def encode_with_eth_abi(self, canonical: Sequence[Any]) -> bytes:
        """Return `abi.encode(values)` computed by `eth_abi`, whatever the types."""
        arguments = [codec.to_eth_abi(item) for codec, item in zip(self._codecs, canonical)]
        try:
            return eth_abi.encode(self._eth_abi_types, arguments)
        except EncodingError as error:
            raise InvalidLeafValue(f"eth_abi could not encode {list(canonical)!r}: {error}") from None

    def canonical_and_hash(self, value: Any, *, strict: bool = False) -> tuple[list[Any], bytes]:
        """Validate `value` and return its canonical form and its leaf hash.

        The leaf hash is keccak256(keccak256(abi.encode(value))), as in StandardMerkleTree.
        """
        if not self.word_sized:
            canonical = self.canonical(value, strict=strict)
            encoded = self.encode_with_eth_abi(canonical)
            return canonical, keccak_256(keccak_256(encoded).digest()).digest()

        self._check_width(value)
        canonical = []
        words = []
        for position, (codec, item) in enumerate(zip(self._codecs, value)):
            try:
                item_canonical, word = codec.canonical_and_word(item, strict)
            except InvalidLeafValue as error:
                raise self._located(error, position) from None
            canonical.append(item_canonical)
            words.append(word)
        return canonical, keccak_256(keccak_256(b"".join(words)).digest()).digest()

    def canonical_and_hash_many(
        self, values: Sequence[Any], *, strict: bool = False
    ) -> tuple[list[list[Any]], list[bytes]]:
        """Validate many values and return their canonical forms and leaf hashes, in order.

        For a word-sized encoding this works one position (column) at a time with whole-column
        codec methods, which avoids most of the per-value interpreter overhead of
        canonical_and_hash. When a value is
        invalid, the values are checked again one by one so that the error names the index of
        the first invalid one, as `values[i]: ...`.
        """
        width = len(self.types)
        if not values:
            return [], []
        if not self.word_sized or not all(
            isinstance(value, (list, tuple)) and len(value) == width for value in values
        ):
            return self._canonical_and_hash_each(values, strict)

        canonical_columns = []
        word_columns = []
        try:
            for codec, items in zip(self._codecs, zip(*values)):
                canonical_column, word_column = codec.canonical_and_words(items, strict)
                canonical_columns.append(canonical_column)
                word_columns.append(word_column)
        except InvalidLeafValue:
            return self._canonical_and_hash_each(values, strict)

        canonical_values = list(map(list, zip(*canonical_columns)))
        encoded = word_columns[0] if width == 1 else map(b"".join, zip(*word_columns))
        digest = keccak_256.digest
        hashes = list(map(digest, map(keccak_256, map(digest, map(keccak_256, encoded)))))
        return canonical_values, hashes

    def _canonical_and_hash_each(
        self, values: Sequence[Any], strict: bool
    ) -> tuple[list[list[Any]], list[bytes]]:
        canonical_values = []
        hashes = []
        for index, value in enumerate(values):
            try:
                canonical, leaf_hash = self.canonical_and_hash(value, strict=strict)
            except InvalidLeafValue as error:
                raise InvalidLeafValue(f"values[{index}]: {error}") from None
            canonical_values.append(canonical)
            hashes.append(leaf_hash)
        return canonical_values, hashes

    def leaf_hash(self, value: Any, *, strict: bool = False) -> bytes:
        """Return keccak256(keccak256(abi.encode(value))) after validating `value`."""
        return self.canonical_and_hash(value, strict=strict)[1]


@lru_cache(maxsize=64)
def _cached_leaf_encoding(types: tuple[str, ...]) -> LeafEncoding:
    return LeafEncoding(types)


def leaf_encoding_of(types: Sequence[str] | LeafEncoding) -> LeafEncoding:
    """Return a LeafEncoding for `types`, reusing a cached one for a repeated list of types."""
    if isinstance(types, LeafEncoding):
        return types
    if isinstance(types, str) or not isinstance(types, Sequence):
        raise InvalidLeafEncoding(f"a leaf encoding must be a list of ABI types, got {types!r}")
    if not all(isinstance(type_str, str) for type_str in types):
        raise InvalidLeafEncoding(f"every ABI type in a leaf encoding must be a string: {types!r}")
    return _cached_leaf_encoding(tuple(types))


def standard_leaf_hash(leaf_encoding: Sequence[str] | LeafEncoding, value: Any) -> bytes:
    """Return the StandardMerkleTree leaf hash keccak256(keccak256(abi.encode(value))).

    Integers may be ints or decimal strings here, as in JSON documents.
    """
    return leaf_encoding_of(leaf_encoding).leaf_hash(value)
