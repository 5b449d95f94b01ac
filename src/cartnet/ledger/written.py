"""The sequence number each stored entry was written with, found from its hash.

A store that reads entries back by sequence number turns a swap of two rows into two
changed sequence numbers. Such an entry no longer matches its hash, but does with the
number it was written with; finding that number lets verification tell a moved entry
from an edited one, and check the chain in written order.
"""

from __future__ import annotations

from collections.abc import Sequence

from cartnet.ledger.canonical import sha256_hex
from cartnet.ledger.entry import AuditEntry, ChainHead

__all__ = ["written_sequences"]

_SEARCH_SPAN = 32
"""How far from its stored number an entry's written number is searched for, when the
entry it chains to is gone (deleted, and the later ones renumbered to hide the gap)."""
_SEARCH_BUDGET = 4096
"""Most hashes spent on that search, so a table tampered with throughout stays quick."""


def written_sequences(entries: Sequence[AuditEntry], start: ChainHead) -> list[int | None]:
    """The sequence number each entry was written with; ``None`` where none fits its hash.

    An entry whose sequence number was changed in the store no longer matches its hash,
    but it does with the number it was written with: one more than that of the entry
    whose hash it chains to. Following the links from ``start`` finds that number with
    one or two extra hashes per such entry, which tells a moved entry from an edited one.
    An entry whose predecessor is gone is tried with nearby numbers instead.
    """
    written: list[int | None] = [None] * len(entries)
    waiting: dict[str, list[int]] = {}
    stored_hashes = {start.hash}
    found = [start]
    for position, entry in enumerate(entries):
        stored_hashes.add(entry.hash)
        found.append(ChainHead(entry.sequence, entry.hash))  # until shown to be moved
        if entry.computed_hash() == entry.hash:
            written[position] = entry.sequence
        else:
            waiting.setdefault(entry.previous_hash, []).append(position)

    def fits(position: int, candidate: int) -> bool:
        entry = entries[position]
        content = {**entry.content(), "sequence": candidate}
        if candidate == entry.sequence or sha256_hex(content) != entry.hash:
            return False
        written[position] = candidate
        found.append(ChainHead(candidate, entry.hash))
        return True

    def follow_links() -> None:
        while found:
            before = found.pop()
            for position in waiting.get(before.hash, []):
                if written[position] is None:
                    fits(position, before.sequence + 1)

    follow_links()
    budget = _SEARCH_BUDGET
    for position, entry in enumerate(entries):
        if written[position] is not None or entry.previous_hash in stored_hashes:
            continue
        for distance in range(1, _SEARCH_SPAN + 1):
            near = [entry.sequence + distance, entry.sequence - distance]
            candidates = [c for c in near if c > start.sequence][:budget]
            budget -= len(candidates)
            if any(fits(position, c) for c in candidates):
                follow_links()
                break
    return written
