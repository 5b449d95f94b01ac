"""The canonical JSON encoding that audit entries and e-signatures hash.

A hash is only worth something if someone can recompute it from the stored values, in
thirty years and in another language. This module fixes the byte string that is hashed,
independently of how a record happens to be stored.

The canonical form of a value is UTF-8 encoded JSON written as follows:

* objects (``Mapping``) have ``str`` keys only, written sorted by Unicode code point
  (Python's ``sorted``), with no whitespace: separators are ``,`` and ``:``;
* arrays come from ``list`` and ``tuple``, in their order;
* strings are written as Python's ``json`` module writes them with
  ``ensure_ascii=False``: only ``"``, ``\\`` and control characters below U+0020 are
  escaped (``\\n``, ``\\t``, ... or ``\\u00XX``), everything else is the character
  itself; strings are not Unicode-normalised (the hash covers the text as entered);
* ``None``, ``True``, ``False`` are ``null``, ``true``, ``false``;
* integers in decimal; floats as Python's ``repr`` (shortest text that reads back to
  the same double: ``1.0``, ``-150.5``, ``1e+16``); NaN and infinities are refused, and
  ``1`` and ``1.0`` are different values;
* an ``Enum`` member is its ``value``;
* an aware ``datetime`` is converted to UTC and written ISO 8601 with microseconds and
  ``Z``: ``2026-03-02T14:05:09.000000Z``; a naive one is refused;
* a ``date`` is ``YYYY-MM-DD``.

Anything else is refused with the path of the offending value. This is close to, but
not, RFC 8785 (JCS): JCS sorts keys by UTF-16 code units and writes numbers the
JavaScript way.

>>> from datetime import UTC, datetime
>>> canonical_json({"b": 1.5, "a": [None, True], "at": datetime(2026, 3, 2, 14, 5, tzinfo=UTC)})
b'{"a":[null,true],"at":"2026-03-02T14:05:00.000000Z","b":1.5}'
>>> sha256_hex({})
'44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum

GENESIS_HASH = "0" * 64
"""The "previous hash" of the first entry of a chain."""


def utc_text(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; naive datetimes are refused.

    >>> from datetime import timedelta, timezone
    >>> utc_text(datetime(2026, 3, 2, 15, 5, 9, 12, tzinfo=timezone(timedelta(hours=1))))
    '2026-03-02T14:05:09.000012Z'
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; give an aware datetime")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_json(value: object) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (rules in the module docstring)."""
    text = json.dumps(
        _plain(value, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def sha256_hex(value: object) -> str:
    """Lower-case hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def is_hex_hash(text: str) -> bool:
    """Whether ``text`` looks like a SHA-256 digest: 64 lower-case hex characters."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _plain(value: object, path: str) -> object:
    """``value`` as the JSON types ``json.dumps`` writes; ``path`` names it in errors."""
    if isinstance(value, Enum):
        return _plain(value.value, path)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} cannot be hashed; give a finite number")
        return float(value)
    if isinstance(value, datetime):
        try:
            return utc_text(value)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        plain: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: key {key!r} is not text; canonical keys are str")
            plain[key] = _plain(item, f"{path}.{key}")
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{path}: a {type(value).__name__} has no canonical form; convert it to text, "
        "a number, a list or a mapping first"
    )
