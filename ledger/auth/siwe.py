"""Sign-In with Ethereum (EIP-4361) messages: build, parse strictly and verify.

The message layout follows the ABNF of EIP-4361 (ERC-4361, with the optional `scheme://` prefix
before the domain). Signatures are checked as EIP-191 `personal_sign` signatures of externally
owned accounts. Contract wallets (EIP-1271) are not supported.

The one-time use of the nonce is not checked here, so the caller must look up `SiweMessage.nonce`
in the database and consume it in the same transaction that opens the session.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_checksum_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

# --- Errors ------------------------------------------------------------------------------------


class SiweError(Exception):
    """Base class of every sign-in failure, with a stable machine-readable error `code`."""

    code: ClassVar[str] = "siwe_error"


class InvalidSiweMessage(SiweError):
    """Message that does not follow the EIP-4361 layout, or has a field with an invalid value.

    `field` is the EIP-4361 field name (for example `address` or `issued-at`) or `message` for a
    layout error. `line` is the 1-based line number when the error comes from parsing text.
    """

    code = "siwe_malformed"

    def __init__(self, field: str, reason: str, *, line: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.line = line
        location = f"line {line} ({field})" if line is not None else field
        super().__init__(f"invalid sign-in message: {location}: {reason}")


class SiweBadSignature(SiweError):
    """Signature that is malformed or was not made by the message's address."""

    code = "siwe_bad_signature"


class SiweDomainMismatch(SiweError):
    """Message made for another domain than the expected one."""

    code = "siwe_domain_mismatch"


class SiweChainMismatch(SiweError):
    """Message bound to another chain id than the expected one."""

    code = "siwe_chain_mismatch"


class SiweExpired(SiweError):
    """Message whose expiration time has passed."""

    code = "siwe_expired"


class SiweNotYetValid(SiweError):
    """Message whose not-before time is still in the future."""

    code = "siwe_not_yet_valid"


# --- RFC 3986 and RFC 3339 grammar -------------------------------------------------------------

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT_ENCODED = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT_ENCODED})"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT_ENCODED})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT_ENCODED})+"
# The bracketed IP literal is checked further by `_is_valid_ip_literal`.
_HOST = rf"(?:\[[0-9A-Za-z:.\-_~{_SUB_DELIMS}]+\]|{_REG_NAME})"
_AUTHORITY = rf"(?:(?P<userinfo>{_USERINFO})@)?(?P<host>{_HOST})(?::(?P<port>[0-9]*))?"

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_AUTHORITY_RE = re.compile(_AUTHORITY)
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_HIER_PART = (
    rf"(?://(?P<authority>[^/?#]*)(?:/{_SEGMENT})*"  # "//" authority path-abempty
    rf"|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"  # path-absolute
    rf"|{_SEGMENT_NZ}(?:/{_SEGMENT})*"  # path-rootless
    r"|)"  # path-empty
)
_URI_RE = re.compile(
    rf"[A-Za-z][A-Za-z0-9+\-.]*:{_HIER_PART}"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)

_STATEMENT_RE = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]*")
_REQUEST_ID_RE = re.compile(rf"{_PCHAR}*")
_ADDRESS_RE = re.compile(r"0x[0-9A-Fa-f]{40}")
_NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID_RE = re.compile(r"[0-9]+")
_DATE_TIME_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>[Zz]|[+\-][0-9]{2}:[0-9]{2})"
)


def _is_valid_ip_literal(literal: str) -> bool:
    """Check an RFC 3986 IP-literal without its brackets: an IPv6 address or an IPvFuture."""
    if re.fullmatch(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+", literal):
        return True
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def _check_authority(field: str, value: str) -> None:
    match = _AUTHORITY_RE.fullmatch(value)
    if match is None:
        raise InvalidSiweMessage(
            field, f"{value!r} is not an RFC 3986 authority such as example.com or example.com:8443"
        )
    host = match.group("host")
    if host.startswith("[") and not _is_valid_ip_literal(host[1:-1]):
        raise InvalidSiweMessage(field, f"{host!r} is not a valid IPv6 address literal")


def _check_uri(field: str, value: str) -> None:
    match = _URI_RE.fullmatch(value)
    if match is None:
        raise InvalidSiweMessage(field, f"{value!r} is not an RFC 3986 URI")
    authority = match.group("authority")
    if authority is not None and authority != "":
        _check_authority(field, authority)


def parse_timestamp(field: str, value: str) -> datetime:
    """Parse an RFC 3339 `date-time` into an aware datetime.

    Fractions of a second past microseconds are truncated, because `datetime` stores
    microseconds. Leap seconds (second 60) are rejected for the same reason.

    Raises:
        InvalidSiweMessage: `value` is not an RFC 3339 date-time with a time zone offset.
    """
    match = _DATE_TIME_RE.fullmatch(value)
    if match is None:
        raise InvalidSiweMessage(
            field,
            f"{value!r} is not an RFC 3339 date-time with a time zone, "
            "such as 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.250+02:00",
        )
    parts = match.groupdict()
    if parts["second"] == "60":
        raise InvalidSiweMessage(field, f"{value!r} is a leap second, which is not supported")

    offset_text = parts["offset"]
    if offset_text in ("Z", "z"):
        tzinfo = UTC
    else:
        offset_hours, offset_minutes = int(offset_text[1:3]), int(offset_text[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            raise InvalidSiweMessage(field, f"{value!r} has an invalid time zone offset")
        offset = timedelta(hours=offset_hours, minutes=offset_minutes)
        tzinfo = timezone(-offset if offset_text[0] == "-" else offset)

    fraction = parts["fraction"] or "0"
    try:
        return datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"]),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tzinfo,
        )
    except ValueError as error:
        raise InvalidSiweMessage(field, f"{value!r} is not a valid date-time: {error}") from None


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as an RFC 3339 date-time in UTC, for example 2024-05-01T12:00:00Z.

    Microseconds are written only when they are not zero.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime with a time zone, got {moment!r}")
    moment = moment.astimezone(UTC)
    timespec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


# --- Message -----------------------------------------------------------------------------------

_HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_MAX_MESSAGE_LENGTH = 16_384

# Labels of the lines after "Issued At", in the order EIP-4361 requires.
_OPTIONAL_LABELS = ("Expiration Time: ", "Not Before: ", "Request ID: ", "Resources:")


@dataclass(frozen=True, kw_only=True)
class SiweMessage:
    """An EIP-4361 message. Every field is validated on construction.

    Timestamps are kept as the RFC 3339 text of the message, so that `to_text()` reproduces a
    parsed message byte for byte. The `*_datetime` properties return them as aware datetimes.
    `statement`, `request_id` and `resources` distinguish an absent line (None) from an empty one.
    """

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = "1"
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] | None = None
    scheme: str | None = None

    def __post_init__(self) -> None:
        if self.resources is not None and not isinstance(self.resources, tuple):
            object.__setattr__(self, "resources", tuple(self.resources))
        self._validate()

    def _validate(self) -> None:
        if self.scheme is not None and not _SCHEME_RE.fullmatch(self.scheme):
            raise InvalidSiweMessage("scheme", f"{self.scheme!r} is not an RFC 3986 scheme")
        _check_authority("domain", self.domain)

        if not _ADDRESS_RE.fullmatch(self.address):
            raise InvalidSiweMessage(
                "address", f"{self.address!r} is not 0x followed by 40 hexadecimal digits"
            )
        if not is_checksum_address(self.address):
            raise InvalidSiweMessage(
                "address",
                f"{self.address!r} is not an EIP-55 checksummed address, "
                f"expected {to_checksum_address(self.address)}",
            )

        if self.statement is not None and not _STATEMENT_RE.fullmatch(self.statement):
            raise InvalidSiweMessage(
                "statement",
                "only RFC 3986 reserved and unreserved characters and spaces are allowed, "
                "on a single line",
            )
        _check_uri("uri", self.uri)
        if self.version != "1":
            raise InvalidSiweMessage("version", f"{self.version!r} is not supported, expected '1'")
        chain_id_is_int = isinstance(self.chain_id, int) and not isinstance(self.chain_id, bool)
        if not chain_id_is_int or self.chain_id < 0:
            raise InvalidSiweMessage("chain-id", f"{self.chain_id!r} is not a non-negative integer")
        if not _NONCE_RE.fullmatch(self.nonce):
            raise InvalidSiweMessage(
                "nonce", f"{self.nonce!r} is not at least 8 ASCII letters and digits"
            )

        parse_timestamp("issued-at", self.issued_at)
        if self.expiration_time is not None:
            parse_timestamp("expiration-time", self.expiration_time)
        if self.not_before is not None:
            parse_timestamp("not-before", self.not_before)
        if self.request_id is not None and not _REQUEST_ID_RE.fullmatch(self.request_id):
            raise InvalidSiweMessage(
                "request-id", f"{self.request_id!r} contains characters outside RFC 3986 pchar"
            )
        for resource in self.resources or ():
            _check_uri("resources", resource)

    @property
    def issued_at_datetime(self) -> datetime:
        """Issued-at time as an aware datetime."""
        return parse_timestamp("issued-at", self.issued_at)

    @property
    def expiration_datetime(self) -> datetime | None:
        """Expiration time as an aware datetime, or None when the message has none."""
        if self.expiration_time is None:
            return None
        return parse_timestamp("expiration-time", self.expiration_time)

    @property
    def not_before_datetime(self) -> datetime | None:
        """Not-before time as an aware datetime, or None when the message has none."""
        if self.not_before is None:
            return None
        return parse_timestamp("not-before", self.not_before)

    def to_text(self) -> str:
        """Render the message in the EIP-4361 layout: the exact text a wallet signs."""
        origin = f"{self.scheme}://{self.domain}" if self.scheme is not None else self.domain
        lines = [origin + _HEADER_SUFFIX, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources is not None:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


# --- Parsing -----------------------------------------------------------------------------------


class _LineReader:
    """Cursor over the lines of a message. Its errors carry the 1-based line number."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.index = 0

    def at_end(self) -> bool:
        return self.index >= len(self.lines)

    def peek(self, ahead: int = 0) -> str | None:
        position = self.index + ahead
        return self.lines[position] if position < len(self.lines) else None

    def error(self, field: str, reason: str) -> InvalidSiweMessage:
        return InvalidSiweMessage(field, reason, line=self.index + 1)

    def take_empty(self, field: str, after: str) -> None:
        line = self.peek()
        if line != "":
            found = "the end of the message" if line is None else repr(line)
            raise self.error(field, f"expected an empty line after {after}, found {found}")
        self.index += 1

    def take_labeled(self, label: str, field: str) -> str:
        line = self.peek()
        if line is None:
            raise self.error(field, f"missing line starting with {label!r}")
        if not line.startswith(label):
            raise self.error(field, f"expected a line starting with {label!r}, found {line!r}")
        self.index += 1
        return line[len(label) :]


def parse(text: str) -> SiweMessage:
    """Parse the text of an EIP-4361 message strictly, following the ABNF layout.

    Lines are separated by LF only, and the message has no trailing line break. The address must
    be EIP-55 checksummed, the nonce at least 8 ASCII letters and digits, and every timestamp an
    RFC 3339 date-time with a time zone.

    Raises:
        InvalidSiweMessage: naming the field and the line that do not follow EIP-4361.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the message as str, got {type(text).__name__}")
    if len(text) > _MAX_MESSAGE_LENGTH:
        raise InvalidSiweMessage(
            "message", f"{len(text)} characters is longer than the {_MAX_MESSAGE_LENGTH} allowed"
        )
    if "\r" in text:
        line = text[: text.index("\r")].count("\n") + 1
        raise InvalidSiweMessage(
            "message", "contains a carriage return, but lines must end with LF only", line=line
        )

    if text.endswith("\n"):
        raise InvalidSiweMessage(
            "message",
            "ends with a line break, but the last line of a message has none",
            line=text.count("\n"),
        )

    reader = _LineReader(text.split("\n"))
    values: dict[str, object] = {}
    line_of_field: dict[str, int] = {}
    _parse_origin_and_address(reader, values, line_of_field)
    _parse_statement(reader, values, line_of_field)
    _parse_required_lines(reader, values, line_of_field)
    _parse_optional_lines(reader, values, line_of_field)

    try:
        return SiweMessage(**values)  # type: ignore[arg-type]
    except InvalidSiweMessage as error:
        line = line_of_field.get(error.field)
        if line is None:
            raise
        raise InvalidSiweMessage(error.field, error.reason, line=line) from None


def _parse_origin_and_address(
    reader: _LineReader, values: dict[str, object], line_of_field: dict[str, int]
) -> None:
    header = reader.peek() or ""
    if not header.endswith(_HEADER_SUFFIX):
        raise reader.error("domain", f"expected '<domain>{_HEADER_SUFFIX}', found {header!r}")
    origin = header[: -len(_HEADER_SUFFIX)]
    if "://" in origin:
        values["scheme"], values["domain"] = origin.split("://", 1)
    else:
        values["domain"] = origin
    line_of_field["scheme"] = line_of_field["domain"] = 1
    reader.index += 1

    address = reader.peek()
    if address is None:
        raise reader.error("address", "missing address line")
    values["address"] = address
    line_of_field["address"] = reader.index + 1
    reader.index += 1
    reader.take_empty("message", "the address")


def _parse_statement(
    reader: _LineReader, values: dict[str, object], line_of_field: dict[str, int]
) -> None:
    """Parse the optional statement between the two empty lines that follow the address.

    Without a statement the address is followed by two empty lines, and with one the statement
    sits between them. An empty statement therefore gives three empty lines.
    """
    first, second = reader.peek(), reader.peek(1)
    if first is None:
        raise reader.error("uri", "missing line starting with 'URI: '")
    if first == "" and second is None:
        reader.index += 1
        raise reader.error("uri", "missing line starting with 'URI: '")
    if first == "" and second != "":
        reader.index += 1
        return

    if first.startswith("URI: ") and second is not None and second.startswith("Version: "):
        raise reader.error(
            "message",
            "expected an empty line before 'URI: ', because a message without a statement "
            "has two empty lines after the address",
        )
    values["statement"] = first
    line_of_field["statement"] = reader.index + 1
    reader.index += 1
    reader.take_empty("message", "the statement")


def _parse_required_lines(
    reader: _LineReader, values: dict[str, object], line_of_field: dict[str, int]
) -> None:
    for label, key, field in (
        ("URI: ", "uri", "uri"),
        ("Version: ", "version", "version"),
        ("Chain ID: ", "chain_id", "chain-id"),
        ("Nonce: ", "nonce", "nonce"),
        ("Issued At: ", "issued_at", "issued-at"),
    ):
        line_of_field[field] = reader.index + 1
        values[key] = reader.take_labeled(label, field)

    chain_id_text = str(values["chain_id"])
    chain_id_line = line_of_field["chain-id"]
    if not _CHAIN_ID_RE.fullmatch(chain_id_text):
        raise InvalidSiweMessage(
            "chain-id", f"{chain_id_text!r} is not a decimal number", line=chain_id_line
        )
    if len(chain_id_text) > 1 and chain_id_text.startswith("0"):
        # The ABNF allows leading zeros, but such a chain id would not survive a round trip.
        raise InvalidSiweMessage(
            "chain-id", f"{chain_id_text!r} has leading zeros", line=chain_id_line
        )
    values["chain_id"] = int(chain_id_text)


def _parse_optional_lines(
    reader: _LineReader, values: dict[str, object], line_of_field: dict[str, int]
) -> None:
    """Parse the optional lines after "Issued At", which must keep the EIP-4361 order."""
    keys = {
        "Expiration Time: ": ("expiration_time", "expiration-time"),
        "Not Before: ": ("not_before", "not-before"),
        "Request ID: ": ("request_id", "request-id"),
    }
    next_allowed = 0

    while not reader.at_end():
        line = reader.lines[reader.index]
        position = next(
            (i for i, label in enumerate(_OPTIONAL_LABELS) if line.startswith(label)), None
        )
        if position is None:
            raise reader.error(
                "message",
                f"unexpected line {line!r}. After 'Issued At' only these lines may follow, in "
                "this order: "
                + ", ".join(repr(label.strip()) for label in _OPTIONAL_LABELS),
            )
        label = _OPTIONAL_LABELS[position]
        if position < next_allowed:
            earlier = _OPTIONAL_LABELS[next_allowed - 1].strip()
            raise reader.error(
                "message", f"{label.strip()!r} must come before {earlier!r} and appear only once"
            )
        next_allowed = position + 1

        if label == "Resources:":
            if line != "Resources:":
                raise reader.error("resources", f"expected 'Resources:' alone, found {line!r}")
            reader.index += 1
            values["resources"] = _parse_resources(reader)
            continue

        key, field = keys[label]
        line_of_field[field] = reader.index + 1
        values[key] = line[len(label) :]
        reader.index += 1


def _parse_resources(reader: _LineReader) -> tuple[str, ...]:
    resources: list[str] = []
    while not reader.at_end():
        line = reader.lines[reader.index]
        if not line.startswith("- "):
            raise reader.error(
                "resources",
                f"expected a resource line '- <URI>' or the end of the message, found {line!r}",
            )
        resource = line[2:]
        try:
            _check_uri("resources", resource)
        except InvalidSiweMessage as error:
            raise reader.error("resources", error.reason) from None
        resources.append(resource)
        reader.index += 1
    return tuple(resources)


# --- Verification ------------------------------------------------------------------------------

_SIGNATURE_RE = re.compile(r"(?:0x)?([0-9A-Fa-f]{130})")


def verify(
    message_text: str,
    signature_hex: str,
    *,
    expected_domain: str,
    expected_chain_id: int,
    now: datetime,
) -> SiweMessage:
    """Verify a signed EIP-4361 message and return it parsed.

    Checks, in this order: the layout, the EIP-191 signature against the message's address, the
    domain (exact match on the authority, for example `ledger.example.org` or `localhost:8000`),
    the chain id, the expiration time (expired when `now` is at or after it) and the not-before
    time. The caller must still consume `nonce` of the returned message exactly once.

    Raises:
        InvalidSiweMessage: the text does not follow EIP-4361.
        SiweBadSignature: the signature is malformed or was not made by the message's address.
        SiweDomainMismatch, SiweChainMismatch, SiweExpired, SiweNotYetValid: the named check failed.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected an aware datetime for now, got {now!r}")

    message = parse(message_text)

    match = None
    if isinstance(signature_hex, str):
        match = _SIGNATURE_RE.fullmatch(signature_hex.strip())
    if match is None:
        raise SiweBadSignature("the signature must be 65 bytes in hexadecimal (130 digits)")
    signature = bytes.fromhex(match.group(1))
    if signature[64] not in (0, 1, 27, 28):
        raise SiweBadSignature(
            f"the signature's recovery id v={signature[64]} is not 0, 1, 27 or 28"
        )
    try:
        signer = Account.recover_message(encode_defunct(text=message_text), signature=signature)
    except (BadSignature, EthValidationError, ValueError) as error:
        raise SiweBadSignature(f"no signer can be recovered from the signature: {error}") from None
    if signer != message.address:
        raise SiweBadSignature(
            f"the message was signed by {signer}, not by its address {message.address}"
        )

    if message.domain != expected_domain:
        raise SiweDomainMismatch(
            f"the message is for domain {message.domain!r}, expected {expected_domain!r}"
        )
    if message.chain_id != expected_chain_id:
        raise SiweChainMismatch(
            f"the message is for chain id {message.chain_id}, expected {expected_chain_id}"
        )

    expiration = message.expiration_datetime
    if expiration is not None and now >= expiration:
        raise SiweExpired(f"the message expired at {message.expiration_time}")
    not_before = message.not_before_datetime
    if not_before is not None and now < not_before:
        raise SiweNotYetValid(f"the message is not valid before {message.not_before}")

    return message


_NONCE_ALPHABET = string.ascii_letters + string.digits


def new_nonce(length: int = 24) -> str:
    """Generate a random alphanumeric nonce; 24 characters carry about 143 bits of entropy."""
    if length < 16:
        raise ValueError(f"nonce length {length} is too short, use at least 16 characters")
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))
