"""Canonical JSON: the exact bytes that audit entries and signatures hash."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet.ledger import canonical_json, sha256_hex


class Colour(StrEnum):
    RED = "red"


def test_keys_sorted_no_whitespace_utf8() -> None:
    """Keys are sorted, separators have no spaces, non-ASCII text is written as UTF-8."""
    assert canonical_json({"b": 1, "a": "Zürich", "c": [1.5, None, False]}) == (
        '{"a":"Zürich","b":1,"c":[1.5,null,false]}'.encode()
    )


def test_times_are_utc_with_microseconds_and_z() -> None:
    """Aware datetimes become UTC ISO 8601 with microseconds and Z; dates stay dates."""
    tokyo = timezone(timedelta(hours=9))
    assert canonical_json(datetime(2026, 3, 2, 23, 5, tzinfo=tokyo)) == (
        b'"2026-03-02T14:05:00.000000Z"'
    )
    assert canonical_json(date(2026, 3, 2)) == b'"2026-03-02"'
    assert canonical_json(Colour.RED) == b'"red"'


def test_one_and_one_point_zero_differ() -> None:
    """The number's type is part of the value: 1 and 1.0 hash differently."""
    assert sha256_hex({"n": 1}) != sha256_hex({"n": 1.0})


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({"at": datetime(2026, 3, 2)}, ValueError, r"\$\.at: .* has no time zone"),
        ({"t": [1.0, float("inf")]}, ValueError, r"\$\.t\[1\]: inf cannot be hashed"),
        ({1: "a"}, TypeError, "key 1 is not text"),
        ({"s": {1, 2}}, TypeError, r"\$\.s: a set has no canonical form"),
    ],
)
def test_values_without_a_canonical_form_are_refused_with_their_path(
    value: object, error: type[Exception], message: str
) -> None:
    """Naive times, NaN/inf, non-text keys and other types are refused, naming where."""
    with pytest.raises(error, match=message):
        canonical_json(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_key_order_never_changes_the_hash(value: dict[str, object]) -> None:
    """The same mapping built in any key order has the same canonical bytes."""
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(reordered) == canonical_json(value)
