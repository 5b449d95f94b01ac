"""The running system's use cases: enrol, offer, book, hand over, test, release, infuse.

Each use case is one database transaction: it checks the rules of
:mod:`cartnet.ledger` and :mod:`cartnet.schedule`, writes its rows and its audit
entries, and commits them together, or refuses with a :class:`ServiceError` and
writes nothing. Who may see what (tenancy) is decided here, where the data is read,
not in the HTTP layer.
"""

from cartnet.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
)
from cartnet.service.settings import ServiceSettings

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServiceError",
    "ServiceSettings",
    "Unauthorized",
]
