"""Slot-chain offers: every feasible option across the network, and why the rest are out."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from cartnet.network import Network, Scope
from cartnet.schedule.capacity import CapacityCalendar, Party
from cartnet.schedule.offers import OfferPlanner, OfferRequest, Reason

SEPT = date(2020, 9, 1)


def planner(net: Network, origin: date = date(2020, 8, 1)) -> OfferPlanner:
    return OfferPlanner(net, CapacityCalendar(net, origin, days=400))


def test_german_commercial_patient_after_the_ema_approvals(kymriah: Network) -> None:
    """Leipzig, Les Ulis and Stein (and Morris Plains) offer chains; the rest say why not."""
    net = kymriah.with_scenario("after-ema-2020")
    result = planner(net).offers(OfferRequest("charite-berlin", "tisagenlecleucel", SEPT))
    assert {c.site for c in result.chains} == {"leipzig", "les-ulis", "stein", "morris-plains"}
    assert {e.site: e.reason for e in result.excluded} == {
        "shanghai": Reason.NO_APPROVAL, "kobe": Reason.NO_APPROVAL, "melbourne": Reason.NO_APPROVAL
    }  # fmt: skip
    ttts = [c.time_to_treatment_days for c in result.chains]
    assert ttts == sorted(ttts)
    for c in result.chains:
        assert SEPT <= c.apheresis < c.start < c.release < c.delivery < c.infusion
        assert c.vein_to_vein_days == (c.infusion - c.apheresis).days


def test_before_the_approvals_les_ulis_is_excluded(kymriah: Network) -> None:
    net = kymriah.with_scenario("before-ema-2020")
    result = planner(net).offers(OfferRequest("charite-berlin", "tisagenlecleucel", SEPT))
    reasons = {e.site: e for e in result.excluded}
    assert reasons["les-ulis"].reason is Reason.NO_APPROVAL
    assert "no EMA commercial approval" in reasons["les-ulis"].message


def test_kobe_offers_only_once_its_approval_is_in_force(kymriah: Network) -> None:
    """Kobe's PMDA approval starts in October 2020: its chains start then, not earlier."""
    result = planner(kymriah).offers(
        OfferRequest("kyoto-univ", "tisagenlecleucel", date(2020, 9, 1)), per_site=1, k=10
    )
    kobe = [c for c in result.chains if c.site == "kobe"]
    assert kobe
    assert kobe[0].start >= date(2020, 10, 1)


def test_full_capacity_moves_the_offer_and_then_excludes_the_site(example: Network) -> None:
    p = OfferPlanner(
        example, CapacityCalendar(example, date(2021, 1, 4), days=120), horizon_days=30
    )
    req = OfferRequest("boston-general", "cart-x", date(2021, 1, 4))
    first = p.offers(req).chains[0]
    p.calendar.booked[p.calendar.site_index["newark"], : p.calendar.day(first.start) + 1] = 99
    later = p.offers(req).chains[0]
    assert later.start > first.start
    p.calendar.booked[p.calendar.site_index["newark"], :] = 99
    full = p.offers(req)
    assert full.chains == []
    assert [e.reason for e in full.excluded if e.site == "newark"] == [Reason.CAPACITY]


def test_clinical_patients_get_their_trial_site(example: Network) -> None:
    req = OfferRequest("paris-centre", "cart-x", date(2021, 1, 4), Scope.CLINICAL, "XT-201")
    result = planner(example, date(2021, 1, 4)).offers(req)
    assert [c.site for c in result.chains] == ["leiden"]
    assert [e.site for e in result.excluded] == ["newark"]


def test_fresh_material_too_far_for_its_stability_window(example: Network) -> None:
    data = example.model_dump(mode="json", by_alias=True)
    data["products"][0].update(starting_material="fresh", stability_hours=30)
    for s in data["sites"]:
        s["starting_materials"] = ["fresh", "cryopreserved"]
    net = Network.model_validate(data)
    result = planner(net, date(2021, 1, 4)).offers(
        OfferRequest("paris-centre", "cart-x", date(2021, 3, 1))
    )
    reasons = {e.site: e.reason for e in result.excluded}
    assert reasons == {"newark": Reason.STABILITY}
    [chain] = result.chains
    assert chain.site == "leiden"
    assert (chain.start - chain.apheresis).days == chain.inbound_days  # fresh: just in time


def test_apheresis_moves_earlier_when_the_center_is_full(example: Network) -> None:
    """Cryopreserved material may be collected earlier and wait for the slot."""
    p = planner(example, date(2021, 1, 4))
    req = OfferRequest("paris-centre", "cart-x", date(2021, 3, 1))
    best = p.offers(req).chains[0]
    p.calendar.apheresis_booked[p.calendar.center_index["paris-centre"], p.calendar.day(
        best.apheresis)] = 1  # fmt: skip
    again = p.offers(req).chains[0]
    assert again.apheresis != best.apheresis


def test_a_booked_offer_is_no_longer_offered(example: Network) -> None:
    p = planner(example, date(2021, 1, 4))
    req = OfferRequest("boston-general", "cart-x", date(2021, 2, 1))
    chain = p.offers(req).chains[0]
    free = int(p.calendar.free_slots("newark", p.calendar.day(chain.start),
                                     p.calendar.day(chain.start))[0])  # fmt: skip
    for i in range(free):
        p.calendar.book(f"o{i}", Party("boston-general", "US"), "newark",
                        chain.apheresis - timedelta(days=i), chain.start)  # fmt: skip
    assert p.offers(req).chains[0].start > chain.start


def test_requests_outside_the_calendar_are_refused(example: Network) -> None:
    with pytest.raises(ValueError, match="outside the capacity calendar"):
        planner(example, date(2021, 1, 4)).offers(
            OfferRequest("boston-general", "cart-x", date(2020, 1, 1))
        )


def test_offers_collect_and_infuse_only_on_the_centers_open_days(kymriah: Network) -> None:
    """Charité is closed on weekends and German holidays: no chain collects or infuses then,
    and an infusion due on a closed day moves to the next open one."""
    net = kymriah.with_scenario("after-ema-2020")
    days = net.center_days("charite-berlin")
    p = planner(net)
    for first in (date(2020, 12, 18), date(2020, 12, 24), date(2021, 3, 27)):
        result = p.offers(OfferRequest("charite-berlin", "tisagenlecleucel", first), k=10)
        assert result.chains
        for c in result.chains:
            assert days.is_open(c.apheresis) and days.is_open(c.infusion)
            due = c.delivery + timedelta(days=p.infusion_days)
            assert c.infusion == days.next_open(due)


def test_a_batch_made_outside_the_eu_carries_the_import_step(kymriah: Network) -> None:
    """Before the approvals a Morris Plains chain for Berlin comes back through QP
    certification at Leipzig: its way back is days longer than Leipzig's own."""
    net = kymriah.with_scenario("before-ema-2020")
    result = planner(net).offers(
        OfferRequest("charite-berlin", "tisagenlecleucel", SEPT), k=10, per_site=1
    )
    back = {c.site: c.outbound_days for c in result.chains}
    assert back["morris-plains"] >= back["leipzig"] + 6
    route = net.delivery_route("morris-plains", "charite-berlin")
    assert back["morris-plains"] == math.ceil(route.mean_days - 1e-9)
