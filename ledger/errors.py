"""Errors the domain raises. The API maps each to its HTTP status and stable code.

    LedgerError
    ├── InvalidInput         422: a value is malformed (bad address, unknown field...)
    ├── NotFound             404: an address, session or epoch does not exist
    ├── Conflict             409: a different payload under a known session id, a state clash
    ├── Forbidden            403: the caller may not act on this object
    ├── Unauthorized         401: missing or invalid credentials
    └── Unavailable          503: a dependency (database, chain) is not reachable
"""

from typing import Any


class LedgerError(Exception):
    """Base of every error the service reports to a caller."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(LedgerError):
    """A malformed value. The message names it and states what is expected."""

    status_code = 422
    code = "invalid_input"


class NotFound(LedgerError):
    """The requested object does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(LedgerError):
    """The request clashes with what is already recorded."""

    status_code = 409
    code = "conflict"


class Forbidden(LedgerError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class Unauthorized(LedgerError):
    """Credentials are missing, malformed, expired or unknown."""

    status_code = 401
    code = "unauthorized"


class Unavailable(LedgerError):
    """A dependency is down; the caller may retry later."""

    status_code = 503
    code = "unavailable"
