"""Logistics pages: pick-ups and transit, shipments, temperature logs and their plot."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.web.conftest import Portal
from tests.web.test_queues import XSS, advance

from cartnet.ledger.custody import FRESH, Reading, excursions
from cartnet.ledger.lifecycle import OrderState
from cartnet.service import shipments
from cartnet.web.charts import temperature_chart


def log_csv(values: list[float]) -> bytes:
    start = datetime.now(UTC) - timedelta(hours=6)
    lines = ["timestamp,temperature_c"] + [
        f"{(start + timedelta(minutes=30 * i)).isoformat()},{v}" for i, v in enumerate(values)
    ]
    return "\n".join(lines).encode()


def test_the_logistics_home_lists_pickups_and_transit(portal: Portal) -> None:
    collected = advance(portal, portal.booked(), OrderState.APHERESIS_COLLECTED)
    released = advance(portal, portal.booked(), OrderState.RELEASED)
    moving = advance(portal, portal.booked(), OrderState.SHIPPED_TO_SITE)
    page = portal.as_user("logistics").get("/logistics")
    assert page.status_code == 200, page.text
    centers = page.text.split("To pick up at treatment centers")[1].split("To pick up at manu")[0]
    assert f"/orders/{collected.id}/custody/handover_to_courier" in centers
    sites = page.text.split("To pick up at manufacturing sites")[1].split("In transit")[0]
    assert f"/orders/{released.id}/custody/handover_to_courier_return" in sites
    transit = page.text.split("<h2>In transit")[1]
    assert moving.coi_eye_readable in transit and "UTC" in transit
    assert re.search(r'<td class="num">\d+\.\d</td>', transit)  # hours in transit
    assert "<strong>1</strong> order(s) in transit" in transit
    filtered = portal.as_user("logistics").get("/logistics", params={"q": collected.coi})
    assert collected.coi_eye_readable in filtered.text
    assert moving.coi_eye_readable not in filtered.text
    for user in ("coordinator", "operator", "qa", "planner", "admin"):
        assert portal.as_user(user).get("/logistics").status_code == 403


def test_shipments_are_opened_and_logs_plotted_against_the_limits(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.APHERESIS_COLLECTED)
    url = f"/orders/{order.id}/shipments"
    page = portal.as_user("coordinator").get(url)
    assert page.status_code == 200 and 'name="courier"' in page.text
    assert 'value="to_site"' in page.text and 'value="to_center"' not in page.text

    missing = portal.post("coordinator", url, {"direction": "to_site", "tracking": "T"})
    assert missing.status_code == 422 and 'id="e-courier"' in missing.text
    wrong_way = portal.post(
        "coordinator", url, {"direction": "to_center", "courier": "C", "tracking": "T"}
    )
    assert wrong_way.status_code == 403
    no_csrf = portal.as_user("coordinator").post(
        url, data={"direction": "to_site", "courier": "C", "tracking": "T"}
    )
    assert no_csrf.status_code == 403
    assert shipments.shipments(portal.ctx, portal.principal("logistics"), order.id) == []

    opened = portal.post(
        "coordinator", url, {"direction": "to_site", "courier": XSS[0], "tracking": XSS[1]}
    )
    assert opened.status_code == 303 and opened.headers["location"] == url
    (sent,) = shipments.shipments(portal.ctx, portal.principal("logistics"), order.id)
    shown = portal.as_user("logistics").get(url)
    for text in XSS:
        assert text not in shown.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in shown.text

    upload = f"{url}/{sent.id}/log"
    assert 'enctype="multipart/form-data"' in shown.text and f'action="{upload}"' in shown.text
    bad = portal.post(
        "logistics",
        upload,
        files={"log": ("log.csv", b"timestamp,temperature_c\n2026-03-02T14:05:00Z,warm\n")},
    )
    assert bad.status_code == 422, bad.text
    assert re.search(r'id="e-log">[^<]*line 2', bad.text), bad.text
    assert shipments.shipments(portal.ctx, portal.principal("logistics"), order.id)[0].logs == 0
    no_file = portal.post("logistics", upload, {})
    assert no_file.status_code == 422 and 'id="e-log"' in no_file.text

    inside = sent.high_c - 1 if sent.high_c is not None else -180.0
    outside = sent.high_c + 10 if sent.high_c is not None else -100.0
    values = [inside, inside, outside, outside, inside, inside]
    good = portal.post("logistics", upload, files={"log": ("log.csv", log_csv(values))})
    assert good.status_code == 303, good.text
    plotted = portal.as_user("coordinator").get(url)
    svg = plotted.text.split("<svg")[1].split("</svg>")[0]
    limits = [v for v in (sent.low_c, sent.high_c) if v is not None]
    assert svg.count('class="limit"') == len(limits)
    assert svg.count('class="excursion"') == 1 and 'class="series"' in svg
    assert 'class="axis"' in svg and "UTC" in svg
    assert "style=" not in plotted.text and "<script>" not in plotted.text.split("</head>")[1]

    for user, status in (("other_coordinator", 404), ("admin", 403)):
        assert portal.as_user(user).get(url).status_code == status
    assert (
        portal.post(
            "other_coordinator", upload, files={"log": ("l.csv", log_csv(values))}
        ).status_code
        == 404
    )


def test_the_chart_draws_readings_limits_and_excursions() -> None:
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    readings = [
        Reading(start + timedelta(minutes=30 * i), t) for i, t in enumerate([4, 5, 11, 12, 6, 1])
    ]
    found = excursions(readings, *FRESH)
    chart = temperature_chart(readings, *FRESH, found)
    assert [t.text for t in chart.limits] == ["low 2 °C", "high 8 °C"]
    assert len(chart.spans) == 2  # above 8 °C, then below 2 °C at the end
    assert len(chart.points.split()) == 6
    assert chart.x_ticks[0].text == "03-02 08:00" and chart.x_ticks[-1].text.endswith("UTC")
    ys = [float(p.split(",")[1]) for p in chart.points.split()]
    high, low = chart.limits[1].at, chart.limits[0].at
    assert min(ys[2:4]) < high < low < ys[5]  # 11-12 °C drawn above the high line, 1 °C below low
