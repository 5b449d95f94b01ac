"""Chain of custody: identifier scans, temperature-logger CSV files, excursions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartnet.identity import ChainOfIdentityId, DonationIdentificationNumber
from cartnet.ledger import (
    CRYOPRESERVED,
    FRESH,
    Actor,
    CustodyEvent,
    CustodyStep,
    Excursion,
    ExcursionSide,
    Reading,
    Role,
    TemperatureLimits,
    TemperatureLogError,
    excursions,
    read_temperature_log,
    verify_scan,
)

COI = ChainOfIdentityId.parse("&/CHG123426A1B2C3")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
OPERATOR = Actor("u-021", "Kenji Sato", Role.SITE_OPERATOR)


def log(*temperatures: float, minutes: int = 10) -> list[Reading]:
    """Readings every ``minutes`` from T0."""
    return [Reading(T0 + timedelta(minutes=minutes * i), t) for i, t in enumerate(temperatures)]


# --- scans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scanned",
    ["&/CHG123426A1B2C3", "CHG123426A1B2C3", "CH G1234 26 A1B2C3 4", " &/CHG123426A1B2C3 "],
)
def test_scan_of_the_orders_own_coi_is_accepted(scanned: str) -> None:
    """The bar code, the data characters or the printed text of the right CoI pass."""
    result = verify_scan(scanned, COI)
    assert result.accepted and result.refusal is None
    assert result.coi == COI


@pytest.mark.parametrize(
    ("scanned", "parts"),
    [
        ("&/CHG123426A1B2C4", "sequence differs"),
        ("&/CHG123425A1B2C3", "year differs"),
        ("&/CHW000026A1B2C3", "issuing facility differs"),
        ("&/CHW000025ZZZZZZ", "issuing facility, year, sequence differ"),
    ],
)
def test_scan_of_another_coi_is_refused_naming_both(scanned: str, parts: str) -> None:
    """Another therapy's identifier is refused; the reason shows both and what differs."""
    result = verify_scan(scanned, COI)
    assert not result.accepted
    assert result.coi == ChainOfIdentityId.parse(scanned)
    assert result.refusal is not None
    assert f"belongs to another therapy ({parts})" in result.refusal
    assert result.refusal.endswith("this order's identifier is CH G1234 26 A1B2C3 4")


@pytest.mark.parametrize(
    ("scanned", "why"),
    [
        (DonationIdentificationNumber.parse("G123498654321").barcode_data(), "literal"),
        ("&/CHG123426A1B2C", "length"),
        ("CH G1234 26 A1B2C3 X", "check character"),
        ("", "literal"),
    ],
)
def test_malformed_scan_is_refused_with_the_parse_error(scanned: str, why: str) -> None:
    """A DIN, a truncated code or a mistyped check character is refused, saying why."""
    result = verify_scan(scanned, COI)
    assert not result.accepted and result.coi is None
    assert result.refusal is not None
    assert result.refusal.startswith("not a valid CoI identifier: CoI identifier")
    assert why in result.refusal


def test_typed_identifier_needs_its_check_character() -> None:
    """Keyboard entry without the check character K is refused; with it, accepted."""
    refused = verify_scan("CHG123426A1B2C3", COI, typed=True)
    assert not refused.accepted and "check character: missing" in (refused.refusal or "")
    assert verify_scan("CHG123426A1B2C34", COI, typed=True).accepted


def test_custody_event_keeps_the_scan_and_needs_an_aware_time() -> None:
    """A custody event records the raw scan and local time; a naive time is refused."""
    local = timezone(timedelta(hours=1))
    event = CustodyEvent(
        order_id="ORD-1",
        step=CustodyStep.RECEIPT_AT_SITE,
        actor=OPERATOR,
        organisation="Novartis Stein",
        place="Stein, CH, goods receipt",
        at=datetime(2026, 3, 4, 9, 30, tzinfo=local),
        scanned="&/CHG123426A1B2C4",
        temperature_c=-181.0,
    )
    assert not verify_scan(event.scanned, COI).accepted
    with pytest.raises(ValueError, match="needs a UTC offset"):
        CustodyEvent(
            "ORD-1", CustodyStep.INFUSION, OPERATOR, "CHOP", "ward", datetime(2026, 3, 4), ""
        )
    with pytest.raises(ValueError, match="place must be non-empty"):
        CustodyEvent("ORD-1", CustodyStep.INFUSION, OPERATOR, "CHOP", " ", T0, "")


# --- temperature log CSV -----------------------------------------------------------------


def test_logger_export_is_read_with_offsets_bom_crlf_and_blank_lines() -> None:
    """A real export (BOM, CRLF, blank lines, spaces, Z and +01:00) gives aware readings."""
    text = (
        "\ufefftimestamp, temperature_c\r\n"
        "2026-03-02T08:00:00Z,-182.5\r\n"
        "\r\n"
        "2026-03-02T09:10:00+01:00, -181\r\n"
        "2026-03-02 08:20:00.500+00:00,-149.9\r\n"
    )
    readings = read_temperature_log(text)
    assert [r.temperature_c for r in readings] == [-182.5, -181.0, -149.9]
    assert [r.at.astimezone(UTC) for r in readings] == [
        T0,
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=20, milliseconds=500),
    ]
    assert read_temperature_log("timestamp,temperature_c\n") == []


HEADER = "timestamp,temperature_c\n"


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("", 1, None, "empty; expected the header"),
        ("time,temperature_c\n", 1, 1, "expected 'timestamp', found 'time'"),
        ("timestamp\n", 1, 2, "expected 'temperature_c', found nothing"),
        ("timestamp,temperature_c,logger\n", 1, 3, "found an extra column 'logger'"),
        ("\n\n2026-03-02T08:00:00Z,-180\n", 3, 1, "expected 'timestamp'"),
        (HEADER + "2026-03-02T08:00:00Z\n", 2, 2, "missing; each line needs 2 values"),
        (HEADER + "2026-03-02T08:00:00Z,-180,ok\n", 2, 3, "unexpected extra value 'ok'"),
        (HEADER + ",-180\n", 2, 1, "empty; give an ISO 8601 timestamp"),
        (HEADER + "yesterday,-180\n", 2, 1, "'yesterday' is not an ISO 8601 timestamp"),
        (HEADER + "2026-03-02T08:00:00,-180\n", 2, 1, "has no UTC offset"),
        (HEADER + "2026-03-02T08:00:00Z,\n", 2, 2, "empty; give the temperature"),
        (HEADER + '2026-03-02T08:00:00Z,"-180,5"\n', 2, 2, "'-180,5' is not a number"),
        (HEADER + "2026-03-02T08:00:00Z,cold\n", 2, 2, "'cold' is not a number"),
        (HEADER + "2026-03-02T08:00:00Z,nan\n", 2, 2, "not a finite temperature"),
        (
            HEADER + "2026-03-02T08:00:00Z,-180\n\n2026-03-02T09:00:00+01:00,-181\n",
            4,
            1,
            "is not after the previous reading's 2026-03-02T08:00:00+00:00 (line 2)",
        ),
        (
            HEADER + "2026-03-02T08:00:00Z,-180\r\n2026-03-02T08:10:00Z,-181\r\nx,1\r\n",
            4,
            1,
            "'x' is not an ISO 8601",
        ),
    ],
)
def test_csv_errors_name_line_and_column(
    text: str, line: int, column: int | None, fragment: str
) -> None:
    """A malformed log is refused with the line, the column (and its name) and the problem."""
    with pytest.raises(TemperatureLogError) as caught:
        read_temperature_log(text)
    err = caught.value
    assert (err.line, err.column) == (line, column)
    assert fragment in str(err)
    where = f"line {line}" if column is None else f"line {line}, column {column} ("
    assert str(err).startswith(f"temperature log {where}")


# --- excursions -------------------------------------------------------------------------


def test_cryopreserved_excursion_is_found_with_its_extreme() -> None:
    """LN2 shipper warming above -150 °C for two readings is one excursion, 20 minutes."""
    found = excursions(log(-182, -170, -150, -140, -120, -155, -181), *CRYOPRESERVED)
    assert found == [
        Excursion(
            side=ExcursionSide.ABOVE,
            start=T0 + timedelta(minutes=30),
            end=T0 + timedelta(minutes=50),
            limit_c=-150.0,
            extreme_c=-120,
            readings=2,
            ongoing=False,
        )
    ]
    assert found[0].minutes == 20


def test_limits_are_inclusive() -> None:
    """Exactly -150 °C, 2 °C and 8 °C are within the limits."""
    assert excursions(log(-150, -150), *CRYOPRESERVED) == []
    assert excursions(log(2, 8, 2), *FRESH) == []


def test_fresh_product_excursions_on_both_sides() -> None:
    """Fresh material 2-8 °C: too warm, then too cold, each its own excursion."""
    found = excursions(log(5, 9, 5, 1, 0.5, 5), *FRESH)
    assert [(e.side, e.start, e.end, e.extreme_c) for e in found] == [
        (ExcursionSide.ABOVE, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20), 9),
        (ExcursionSide.BELOW, T0 + timedelta(minutes=30), T0 + timedelta(minutes=50), 0.5),
    ]
    assert [e.limit_c for e in found] == [8.0, 2.0]


def test_jump_from_too_warm_to_too_cold_splits_the_excursion() -> None:
    """Crossing straight from above to below ends one excursion and starts the next."""
    found = excursions(log(9, 1, 5), *FRESH)
    assert [(e.side, e.minutes) for e in found] == [
        (ExcursionSide.ABOVE, 10),
        (ExcursionSide.BELOW, 10),
    ]


def test_short_excursions_are_tolerated_up_to_max_minutes() -> None:
    """With max_minutes=15 a 10-minute blip is tolerated, a 20-minute one is not."""
    readings = log(5, 9, 5, 9, 9, 5)
    assert [e.minutes for e in excursions(readings, *FRESH)] == [10, 20]
    assert [e.minutes for e in excursions(readings, *FRESH, max_minutes=15)] == [20]
    assert excursions(readings, *FRESH, max_minutes=20) == []


def test_log_ending_outside_the_limits_is_always_reported() -> None:
    """An excursion still running at the end of the log has unknown length: reported."""
    found = excursions(log(5, 5, 12), *FRESH, max_minutes=60)
    assert len(found) == 1 and found[0].ongoing and found[0].minutes == 0


def test_unsorted_readings_and_bad_limits_are_refused() -> None:
    """Readings out of time order, crossed limits or negative tolerance raise."""
    readings = log(5, 6)
    with pytest.raises(ValueError, match=r"reading 2 .* is not after reading 1"):
        excursions(readings[::-1], *FRESH)
    with pytest.raises(ValueError, match="low limit 8 °C is above high limit 2 °C"):
        excursions(readings, 8, 2)
    with pytest.raises(ValueError, match="max_minutes"):
        excursions(readings, *FRESH, max_minutes=-1)


def _side(value: float, limits: TemperatureLimits) -> ExcursionSide | None:
    if limits.high is not None and value > limits.high:
        return ExcursionSide.ABOVE
    if limits.low is not None and value < limits.low:
        return ExcursionSide.BELOW
    return None


temperatures = st.one_of(
    st.integers(-200, 20).map(float),
    st.sampled_from([-150.0, -140.0, -160.0, 2.0, 8.0]),
)


@st.composite
def readings_logs(draw: st.DrawFn) -> list[Reading]:
    """Logs of up to 40 readings, 1-30 minutes apart, around the cryo and fresh limits."""
    values = draw(st.lists(temperatures, max_size=40))
    gaps = draw(st.lists(st.integers(1, 30), min_size=len(values), max_size=len(values)))
    at, readings = T0, []
    for value, gap in zip(values, gaps, strict=True):
        readings.append(Reading(at, value))
        at += timedelta(minutes=gap)
    return readings


limit_sets = st.sampled_from([CRYOPRESERVED, FRESH, TemperatureLimits(-160.0, -140.0)])


@settings(max_examples=300, deadline=None)
@given(readings_logs(), limit_sets)
def test_excursions_cover_exactly_the_readings_outside_the_limits(
    readings: list[Reading], limits: TemperatureLimits
) -> None:
    """Every reading outside the limits lies in exactly one excursion of its side; none
    inside the limits does; excursions are maximal, ordered, and report their extreme."""
    found = excursions(readings, *limits)
    for before, after in itertools.pairwise(found):
        assert before.end <= after.start
    for reading in readings:
        side = _side(reading.temperature_c, limits)
        holders = [
            e for e in found if e.start <= reading.at < e.end or (e.ongoing and reading.at == e.end)
        ]
        if side is None:
            assert holders == []
        else:
            assert len(holders) == 1 and holders[0].side is side
    times = [r.at for r in readings]
    for e in found:
        inside = [r for r in readings if e.start <= r.at < e.end or (e.ongoing and r.at == e.end)]
        assert e.readings == len(inside)
        pick = max if e.side is ExcursionSide.ABOVE else min
        assert e.extreme_c == pick(r.temperature_c for r in inside)
        assert e.limit_c == (limits.high if e.side is ExcursionSide.ABOVE else limits.low)
        first = times.index(e.start)
        assert first == 0 or _side(readings[first - 1].temperature_c, limits) is not e.side
        if e.ongoing:
            assert e.end == times[-1]
        else:
            assert _side(readings[times.index(e.end)].temperature_c, limits) is not e.side


@settings(max_examples=200, deadline=None)
@given(readings_logs(), limit_sets, st.integers(0, 120))
def test_max_minutes_only_drops_short_finished_excursions(
    readings: list[Reading], limits: TemperatureLimits, max_minutes: int
) -> None:
    """The tolerance keeps exactly the excursions longer than it, plus any still running."""
    everything = excursions(readings, *limits)
    kept = excursions(readings, *limits, max_minutes=max_minutes)
    assert kept == [e for e in everything if e.ongoing or e.minutes > max_minutes]
    assert all(e.minutes > 0 for e in everything if not e.ongoing)


@settings(max_examples=100, deadline=None)
@given(readings_logs())
def test_log_written_as_csv_reads_back(readings: list[Reading]) -> None:
    """Readings written in the logger format read back unchanged (round trip)."""
    text = "timestamp,temperature_c\n" + "".join(
        f"{r.at.isoformat()},{r.temperature_c!r}\n" for r in readings
    )
    assert read_temperature_log(text) == readings
