"""``cartnet audit verify``'s full list of checks: the store's and the accounts check.

The accounts check (users, bearer tokens and portal sessions against their trail and
credential seals) needs the seal's key derivation, which belongs to the service; the
list lives here so that dependencies point inward (the store never imports the service).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cartnet.service.credentials import credential_findings
from cartnet.store.findings import Check
from cartnet.store.verification import STORE_CHECKS, VerifyReport, run_checks

CHECKS: list[Check] = [*STORE_CHECKS, credential_findings]
"""Every check, in the order it runs; adding one is one more entry."""


def verify_database(
    session: Session, signing_key: bytes | None, checks: list[Check] | None = None
) -> VerifyReport:
    """Run every check (by default :data:`CHECKS`) in ``session`` and collect the findings."""
    return run_checks(session, signing_key, CHECKS if checks is None else checks)
