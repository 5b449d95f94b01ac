"""The network file as planners read and check it: the served one, or a candidate.

The served file is the one ``cartnet serve`` loaded (the settings' ``network``): its
text and the problems the network loader finds in it (none, or the server would not
have started; a file edited on disk since shows its new problems here). A candidate
file is checked by the same loader (:func:`cartnet.network.files.parse_network`) and
never saved: the planner sees every problem with its line and field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cartnet.network.catalog import network_source
from cartnet.network.files import FileProblem, NetworkFileError, parse_network
from cartnet.network.model import Network
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Invalid
from cartnet.service.jobs import PLANNERS

MAX_CANDIDATE_BYTES = 5_000_000
"""A candidate network file larger than this is refused (the packaged one is ~60 kB)."""


@dataclass
class CheckedFile:
    """A network file's text and what the loader says of it."""

    name: str
    text: str
    problems: list[FileProblem] = field(default_factory=list)
    network: Network | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def bad_lines(self) -> set[int]:
        return {p.line for p in self.problems if p.line}


def _check(name: str, text: str) -> CheckedFile:
    try:
        return CheckedFile(name, text, [], parse_network(text, name))
    except NetworkFileError as err:
        return CheckedFile(name, text, list(err.problems))


def served_network_file(ctx: ServiceContext, principal: Principal) -> CheckedFile:
    """The network file the server runs, checked again now."""
    principal.require(PLANNERS, "read the network file")
    try:
        name, text = network_source(ctx.settings.network)
    except NetworkFileError as err:
        return CheckedFile(ctx.settings.network, "", list(err.problems))
    return _check(name, text)


def check_network_file(
    ctx: ServiceContext, principal: Principal, data: bytes, name: str
) -> CheckedFile:
    """Check a candidate network file; nothing is saved."""
    principal.require(PLANNERS, "check network files")
    if not data.strip():
        raise Invalid("paste a network file or choose one to upload", field="network_text")
    if len(data) > MAX_CANDIDATE_BYTES:
        raise Invalid(
            f"the file is larger than {MAX_CANDIDATE_BYTES:,} bytes", field="network_text"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Invalid(f"the file is not UTF-8 text ({err.reason} at byte {err.start})",
                      field="network_text") from None  # fmt: skip
    return _check(name, text)
