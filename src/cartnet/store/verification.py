"""``cartnet audit verify`` as one function: every check, and what the outcome means.

:data:`STORE_CHECKS` are the checks of what the store itself knows (the chain, the
records against their trail, the signatures); each reads the database in the caller's
session and returns :class:`~cartnet.store.findings.Findings`. The service adds its
accounts check on top (:mod:`cartnet.service.verification`), so the store never
imports the service.

The outcome is one of three, and the CLI's exit status says which:

- ``VERIFIED`` (0): every check ran in full and found nothing;
- ``PROBLEMS`` (1): something was changed outside the service (listed);
- ``INCOMPLETE`` (3): nothing found, but something could not be checked (no signing
  key, another signing key, records older than the trail's full coverage): the
  database is *not* verified, and the notices say what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.canonical import is_hex_hash
from cartnet.ledger.entry import ChainHead
from cartnet.store.findings import Check, Findings
from cartnet.store.records import record_findings, signature_findings
from cartnet.store.repository import AuditRepository
from cartnet.store.tables import AuditEntryRow


class Outcome(IntEnum):
    """What ``verify`` concluded; the value is the CLI's exit status."""

    VERIFIED = 0
    PROBLEMS = 1
    INCOMPLETE = 3


def chain_findings(session: Session, signing_key: bytes | None) -> Findings:
    """The hash chain against its head: entries edited, deleted, moved or inserted."""
    return Findings(problems=[str(p) for p in AuditRepository().verify(session)])


STORE_CHECKS: list[Check] = [chain_findings, record_findings, signature_findings]
"""Every check ``verify`` runs, in order."""


def parse_checkpoint(text: str) -> ChainHead:
    """``SEQUENCE:HASH`` as ``cartnet audit head`` prints it; ``ValueError`` naming the fault."""
    sequence, _, digest = text.strip().partition(":")
    if not sequence.isdigit() or int(sequence) < 1:
        raise ValueError(f"checkpoint {text!r}: give SEQUENCE:HASH, the sequence a number >= 1")
    if not is_hex_hash(digest):
        raise ValueError(f"checkpoint {text!r}: the hash must be 64 lower-case hex characters")
    return ChainHead(int(sequence), digest)


def checkpoint_check(checkpoint: ChainHead) -> Check:
    """A check that the trail still holds ``checkpoint``, a head kept apart earlier.

    The hash chain is not keyed: someone who can write the database can rewrite entries
    with fresh hashes and move the head. An entry's hash covers every entry before it,
    so a head kept outside the database (printed by ``cartnet audit head``, kept where
    that person cannot write) proves every entry up to it unchanged.
    """

    def check(session: Session, signing_key: bytes | None) -> Findings:
        stored = session.scalar(
            select(AuditEntryRow.hash).where(AuditEntryRow.sequence == checkpoint.sequence)
        )
        where = f"checkpoint {checkpoint.sequence}"
        if stored is None:
            return Findings([f"{where}: no such entry; the trail was cut back below it"])
        if stored != checkpoint.hash:
            return Findings(
                [
                    f"{where}: its hash differs from the one kept apart; the trail was rewritten "
                    "up to here"
                ]
            )
        return Findings()

    return check


@dataclass(frozen=True)
class VerifyReport:
    """All checks' findings and the number of audit entries read."""

    problems: tuple[str, ...]
    notices: tuple[str, ...]
    entries: int

    @property
    def outcome(self) -> Outcome:
        if self.problems:
            return Outcome.PROBLEMS
        return Outcome.INCOMPLETE if self.notices else Outcome.VERIFIED


def run_checks(session: Session, signing_key: bytes | None, checks: list[Check]) -> VerifyReport:
    """Run ``checks`` in ``session`` and collect the findings."""
    found = Findings()
    for check in checks:
        found.add(check(session, signing_key))
    return VerifyReport(
        tuple(found.problems), tuple(found.notices), AuditRepository().count(session)
    )
