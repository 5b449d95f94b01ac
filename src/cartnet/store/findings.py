"""What one check of ``cartnet audit verify`` found: problems, and what it could not check.

A *problem* is evidence that a record or the trail was changed outside the service
(exit status 1). A *notice* says what could not be checked (no signing key, records
older than the trail's full coverage): nothing was found wrong there, but nothing was
proven either, so ``verify`` does not call the database verified (exit status 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session


@dataclass
class Findings:
    """Sentences naming each problem and each thing not checked, in the order found."""

    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def add(self, other: Findings) -> None:
        self.problems += other.problems
        self.notices += other.notices


Check = Callable[[Session, bytes | None], Findings]
"""One check of ``verify``: the session to read, the signing key if it was given."""
