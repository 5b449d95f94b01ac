"""Chain of custody: who held the material, where, when, and at what temperature.

Every handoff of an autologous product is a :class:`CustodyEvent`: the step, the person
(and their role and organisation), the place, the time, the temperature read then and
the identifier scanned off the bag. The scan is checked against the order's Chain of
Identity identifier with :func:`verify_scan`, which refuses another therapy's identifier
or an unreadable one and says why (the service records a refused scan as an exception
and stops the handoff). Between handoffs a temperature logger travels with the shipper;
:func:`read_temperature_log` reads its CSV export and :func:`excursions` finds the periods
outside the product's limits (cryopreserved: at or below -150 °C; fresh: 2-8 °C).

>>> from cartnet.identity import ChainOfIdentityId
>>> expected = ChainOfIdentityId.parse("&/CHG123426A1B2C3")
>>> verify_scan("&/CHG123426A1B2C3", expected).accepted
True
>>> print(verify_scan("&/CHG123426A1B2C4", expected).refusal)
scanned CH G1234 26 A1B2C4 2 belongs to another therapy (sequence differs); this order's \
identifier is CH G1234 26 A1B2C3 4
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from cartnet.identity import ChainOfIdentityId, IdentifierError
from cartnet.ledger.roles import Actor


class CustodyStep(StrEnum):
    """A handoff or a custody-relevant act in the vein-to-vein chain."""

    COLLECTION = "collection"
    HANDOVER_TO_COURIER = "handover_to_courier"
    COURIER_TRANSFER = "courier_transfer"
    RECEIPT_AT_SITE = "receipt_at_site"
    START_MANUFACTURING = "start_manufacturing"
    RELEASE = "release"
    HANDOVER_TO_COURIER_RETURN = "handover_to_courier_return"
    RECEIPT_AT_CENTER = "receipt_at_center"
    INFUSION = "infusion"


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """One custody step of one order, as recorded at the bench or the loading dock.

    ``at`` is aware (keep the local offset of the place: it is what the person saw);
    ``scanned`` is the text the scanner or keyboard produced, kept as given even when
    it was refused; ``temperature_c`` is the reading at the handoff, if one was taken.
    """

    order_id: str
    step: CustodyStep
    actor: Actor
    organisation: str
    place: str
    at: datetime
    scanned: str
    temperature_c: float | None = None

    def __post_init__(self) -> None:
        where = f"custody event {self.step} of order {self.order_id!r}"
        for name in ("order_id", "organisation", "place"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: {name} must be non-empty text")
        if not isinstance(self.step, CustodyStep):
            raise ValueError(f"{where}: step must be a CustodyStep, got {self.step!r}")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"{where}: time {self.at.isoformat()} needs a UTC offset")
        if self.temperature_c is not None and not math.isfinite(self.temperature_c):
            raise ValueError(f"{where}: temperature must be a finite number of °C")


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of checking a scan: accepted, or refused with the reason.

    ``coi`` is the identifier read from the scan (``None`` when it did not parse).
    """

    scanned: str
    expected: ChainOfIdentityId
    coi: ChainOfIdentityId | None
    refusal: str | None

    @property
    def accepted(self) -> bool:
        """Whether the scanned identifier is the order's own."""
        return self.refusal is None


def verify_scan(
    scanned: str, expected_coi: ChainOfIdentityId, *, typed: bool = False
) -> ScanResult:
    """Check that ``scanned`` is ``expected_coi``: the product belongs to this patient.

    ``typed``: the text was keyed in, so it must end in the check character K (a bar
    code scan carries its own check). A malformed scan is refused with the parse error;
    another identifier is refused naming the parts that differ.
    """
    try:
        coi = ChainOfIdentityId.parse(scanned, require_check_character=typed)
    except IdentifierError as err:
        return ScanResult(scanned, expected_coi, None, f"not a valid CoI identifier: {err}")
    if coi != expected_coi:
        parts = [
            name
            for name, differs in (
                ("issuing facility", coi.facility != expected_coi.facility),
                ("year", coi.year != expected_coi.year),
                ("sequence", coi.sequence != expected_coi.sequence),
            )
            if differs
        ]
        return ScanResult(
            scanned,
            expected_coi,
            coi,
            f"scanned {coi.eye_readable()} belongs to another therapy "
            f"({', '.join(parts)} differ{'s' if len(parts) == 1 else ''}); this order's "
            f"identifier is {expected_coi.eye_readable()}",
        )
    return ScanResult(scanned, expected_coi, coi, None)


# --- temperature logs -------------------------------------------------------------------

HEADER = ("timestamp", "temperature_c")
"""The columns a temperature log CSV must have, in this order."""


class TemperatureLimits(NamedTuple):
    """Allowed range in °C, both ends included; ``None`` leaves a side open."""

    low: float | None
    high: float | None


CRYOPRESERVED = TemperatureLimits(None, -150.0)
"""Cryopreserved apheresis or product: LN2 vapour, at or below -150 °C."""
FRESH = TemperatureLimits(2.0, 8.0)
"""Fresh apheresis: cold chain, 2-8 °C."""


@dataclass(frozen=True, slots=True, order=True)
class Reading:
    """One logger reading: an aware time and a temperature in °C."""

    at: datetime
    temperature_c: float


class TemperatureLogError(ValueError):
    """A temperature log that cannot be read; names the line and, where known, the column.

    >>> str(TemperatureLogError(4, 2, "'abc' is not a number"))
    "temperature log line 4, column 2 (temperature_c): 'abc' is not a number"
    """

    def __init__(self, line: int, column: int | None, problem: str) -> None:
        self.line = line
        self.column = column
        self.problem = problem
        if column is None:
            where = f"line {line}"
        else:
            name = HEADER[column - 1] if column <= len(HEADER) else "extra"
            where = f"line {line}, column {column} ({name})"
        super().__init__(f"temperature log {where}: {problem}")


def read_temperature_log(text: str) -> list[Reading]:
    """The readings of a logger's CSV export, oldest first.

    The first non-blank line must be the header ``timestamp,temperature_c``; each later
    line holds an ISO 8601 timestamp with a UTC offset (``2026-03-02T14:05:00+01:00`` or
    ``...Z``) and a temperature in °C with a decimal point. Blank lines are skipped.
    Timestamps must increase from line to line. Any other input raises
    :class:`TemperatureLogError` naming the line and column.

    >>> read_temperature_log("timestamp,temperature_c\\n2026-03-02T14:05:00Z,-182.5\\n")
    [Reading(at=datetime.datetime(2026, 3, 2, 14, 5, tzinfo=datetime.timezone.utc), \
temperature_c=-182.5)]
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    readings: list[Reading] = []
    header_seen = False
    previous_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise TemperatureLogError(reader.line_num, None, f"not valid CSV ({err})") from None
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if not header_seen:
            _check_header(row, line)
            header_seen = True
            continue
        reading = _reading(row, line)
        if readings and reading.at <= readings[-1].at:
            raise TemperatureLogError(
                line,
                1,
                f"{reading.at.isoformat()} is not after the previous reading's "
                f"{readings[-1].at.isoformat()} (line {previous_line}); readings must be in "
                "time order",
            )
        readings.append(reading)
        previous_line = line
    if not header_seen:
        raise TemperatureLogError(1, None, f"empty; expected the header {','.join(HEADER)!r}")
    return readings


def _check_header(row: list[str], line: int) -> None:
    names = [cell.strip().lower() for cell in row]
    if tuple(names) == HEADER:
        return
    for column, expected in enumerate(HEADER, start=1):
        found = names[column - 1] if column <= len(names) else None
        if found != expected:
            shown = "nothing" if found is None else repr(row[column - 1])
            raise TemperatureLogError(
                line,
                column,
                f"header must be {','.join(HEADER)!r}; expected {expected!r}, found {shown}",
            )
    raise TemperatureLogError(
        line,
        len(HEADER) + 1,
        f"header must be {','.join(HEADER)!r}; found an extra column {row[len(HEADER)]!r}",
    )


def _reading(row: list[str], line: int) -> Reading:
    if len(row) < len(HEADER):
        raise TemperatureLogError(line, len(row) + 1, "missing; each line needs 2 values")
    if len(row) > len(HEADER):
        raise TemperatureLogError(
            line,
            len(HEADER) + 1,
            f"unexpected extra value {row[len(HEADER)]!r}; each line has 2 values",
        )
    stamp, temperature = (cell.strip() for cell in row)
    if not stamp:
        raise TemperatureLogError(line, 1, "empty; give an ISO 8601 timestamp")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        raise TemperatureLogError(
            line,
            1,
            f"{stamp!r} is not an ISO 8601 timestamp such as 2026-03-02T14:05:00+01:00",
        ) from None
    if at.tzinfo is None:
        raise TemperatureLogError(
            line, 1, f"{stamp!r} has no UTC offset; add one such as +01:00 or Z"
        )
    if not temperature:
        raise TemperatureLogError(line, 2, "empty; give the temperature in °C")
    try:
        value = float(temperature)
    except ValueError:
        raise TemperatureLogError(
            line, 2, f"{temperature!r} is not a number (use a decimal point: -182.5)"
        ) from None
    if not math.isfinite(value):
        raise TemperatureLogError(line, 2, f"{temperature!r} is not a finite temperature")
    return Reading(at, value)


class ExcursionSide(StrEnum):
    """Which limit an excursion crossed."""

    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class Excursion:
    """A period outside the limits, from the first reading outside to the first one back.

    Between two readings the temperature is unknown, so the period runs until the
    first reading that is no longer on this side of the limits (conservative: at most
    one logging interval longer than the truth). ``ongoing``: the log ended outside
    the limits, so ``end`` is the last reading and the true end is unknown.
    ``extreme_c`` is the warmest (above) or coldest (below) reading of the period.
    """

    side: ExcursionSide
    start: datetime
    end: datetime
    limit_c: float
    extreme_c: float
    readings: int
    ongoing: bool

    @property
    def minutes(self) -> float:
        """Length of the period in minutes."""
        return (self.end - self.start).total_seconds() / 60


def excursions(
    readings: Sequence[Reading],
    low: float | None,
    high: float | None,
    max_minutes: float = 0,
) -> list[Excursion]:
    """Periods of ``readings`` outside ``[low, high]`` lasting more than ``max_minutes``.

    Limits are inclusive; ``None`` leaves a side open, so ``excursions(r, *CRYOPRESERVED)``
    checks "at or below -150 °C". A period that is still outside the limits when the
    log ends is always returned (its length is unknown). Readings must be in strictly
    increasing time order, as :func:`read_temperature_log` returns them.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
    >>> temperatures = [5.0, 9.0, 11.0, 7.0]
    >>> log = [Reading(t0 + timedelta(minutes=10 * i), c) for i, c in enumerate(temperatures)]
    >>> [(e.side.value, e.minutes, e.extreme_c) for e in excursions(log, *FRESH)]
    [('above', 20.0, 11.0)]
    >>> excursions(log, *FRESH, max_minutes=30)
    []
    """
    if low is not None and high is not None and low > high:
        raise ValueError(f"low limit {low} °C is above high limit {high} °C")
    if max_minutes < 0 or not math.isfinite(max_minutes):
        raise ValueError(f"max_minutes must be a finite number ≥ 0, got {max_minutes}")
    for i in range(1, len(readings)):
        if readings[i].at <= readings[i - 1].at:
            raise ValueError(
                f"reading {i + 1} ({readings[i].at.isoformat()}) is not after reading {i} "
                f"({readings[i - 1].at.isoformat()}); sort the readings by time"
            )
    found: list[Excursion] = []
    open_side: ExcursionSide | None = None
    start: Reading | None = None
    extreme = 0.0
    count = 0
    for reading in readings:
        side = _side(reading.temperature_c, low, high)
        if open_side is not None and start is not None and side is not open_side:
            found.append(_excursion(open_side, start, reading, low, high, extreme, count, False))
            open_side = None
        if side is None:
            continue
        if open_side is None:
            open_side, start, extreme, count = side, reading, reading.temperature_c, 1
        else:
            count += 1
            pick = max if side is ExcursionSide.ABOVE else min
            extreme = pick(extreme, reading.temperature_c)
    if open_side is not None and start is not None:
        found.append(_excursion(open_side, start, readings[-1], low, high, extreme, count, True))
    return [e for e in found if e.ongoing or e.minutes > max_minutes]


def _side(value: float, low: float | None, high: float | None) -> ExcursionSide | None:
    if high is not None and value > high:
        return ExcursionSide.ABOVE
    if low is not None and value < low:
        return ExcursionSide.BELOW
    return None


def _excursion(
    side: ExcursionSide,
    start: Reading,
    end: Reading,
    low: float | None,
    high: float | None,
    extreme: float,
    count: int,
    ongoing: bool,
) -> Excursion:
    limit = high if side is ExcursionSide.ABOVE else low
    assert limit is not None  # a side is only reached through its limit
    return Excursion(side, start.at, end.at, limit, extreme, count, ongoing)
