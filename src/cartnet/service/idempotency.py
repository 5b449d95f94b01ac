"""``Idempotency-Key``: a retried request gets the first response, not a second booking.

A client that lost the response to a booking sends the same request with the same key
again. The first successful response is stored in the transaction that made the
change, keyed by user and key, with a fingerprint of the request; a replay returns it,
a different request under the same key is refused (422). Two copies racing each other
are resolved by the unique key: the loser sees the winner's response.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.service.access import Principal
from cartnet.service.errors import Invalid
from cartnet.store.tables import IdempotencyRow

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Idempotency:
    """One request's key and fingerprint (method, path and body)."""

    key: str
    fingerprint: str
    now: datetime

    @classmethod
    def of(cls, key: str, method: str, path: str, body: bytes, now: datetime) -> Idempotency:
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
                field="Idempotency-Key",
            )
        digest = hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()
        return cls(key, digest, now)

    def replay(self, session: Session, principal: Principal) -> str | None:
        """The stored response body for this key, if the same request was made before."""
        row = session.scalar(
            select(IdempotencyRow).where(
                IdempotencyRow.user_id == principal.user_id, IdempotencyRow.key == self.key
            )
        )
        if row is None:
            return None
        if row.fingerprint != self.fingerprint:
            raise Invalid(
                "this Idempotency-Key was used for a different request; use a new key",
                field="Idempotency-Key",
            )
        return row.body

    def remember(self, session: Session, principal: Principal, body: str) -> None:
        session.add(
            IdempotencyRow(
                user_id=principal.user_id,
                key=self.key,
                fingerprint=self.fingerprint,
                status_code=200,
                body=body,
                created_at=self.now,
            )
        )
        session.flush()
