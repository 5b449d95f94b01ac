"""Refusals of the service, each with the HTTP status an API gives it.

The API turns them into RFC 9457 problem details: ``title`` names the kind of problem,
``detail`` says what was wrong in words a user can act on, ``field`` points at the
request field (dotted path) when one is to blame.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses; nothing was written."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.code = code


class Invalid(ServiceError):  # noqa: N818  (named after its HTTP status)
    """The request is well-formed but a value is not acceptable."""

    status = 422
    title = "Invalid value"


class Unauthorized(ServiceError):  # noqa: N818  (named after its HTTP status)
    """No valid credentials: missing, unknown, expired or revoked token, wrong password."""

    status = 401
    title = "Not authenticated"


class Forbidden(ServiceError):  # noqa: N818  (named after its HTTP status)
    """Authenticated, but this role may not do this."""

    status = 403
    title = "Not allowed"


class NotFound(ServiceError):  # noqa: N818  (named after its HTTP status)
    """No such record, or none this user may see (the two are not told apart)."""

    status = 404
    title = "Not found"


class Conflict(ServiceError):  # noqa: N818  (named after its HTTP status)
    """The record's state does not allow it: illegal transition, slot taken, wrong scan."""

    status = 409
    title = "Conflict"


class TooManyRequests(ServiceError):  # noqa: N818  (named after its HTTP status)
    """Refused for now: a limit was reached (failed logins, busy password checks, refused
    scans); try again later.

    ``retry_after`` (whole seconds) becomes the ``Retry-After`` header (RFC 9110 10.2.3).
    """

    status = 429
    title = "Too many requests"

    def __init__(
        self,
        detail: str,
        *,
        retry_after: int,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail, field=field, code=code or "too-many-requests")
        self.retry_after = max(1, retry_after)
