"""Places on the globe: great-circle distance, continents and customs borders.

Lanes that a network file does not list get default transit times and costs from
the great-circle distance and from whether the shipment crosses a customs border
(see ``lanes.LaneDefaults``), so the geography lives here.
"""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), the usual choice for the haversine formula."""

_CONTINENT_CODES = {
    "Africa": (
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR "
        "LY MG MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH "
        "ZM ZW"
    ),
    "Asia": (
        "AF AM AZ BH BD BT BN KH CN CY GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN "
        "MM NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE"
    ),
    "Europe": (
        "AL AD AT BY BE BA BG HR CZ DK EE FO FI FR DE GI GR GG HU IS IE IM IT JE XK LV LI LT "
        "LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SE CH UA GB VA AX SJ"
    ),
    "North America": (
        "AI AG AW BS BB BZ BM BQ VG CA KY CR CU CW DM DO SV GL GD GP GT HT HN JM MQ MX MS NI "
        "PA PR BL KN LC MF PM VC SX TT TC US VI UM"
    ),
    "South America": "AR BO BR CL CO EC FK GF GY PY PE SR UY VE",
    "Oceania": "AS AU CK FJ PF GU KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF",
    "Antarctica": "AQ BV TF HM GS",
}

CONTINENT_OF: dict[str, str] = {
    code: continent for continent, codes in _CONTINENT_CODES.items() for code in codes.split()
}
"""ISO 3166-1 alpha-2 country code → continent."""

EU_CUSTOMS_UNION = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE MC".split()
)
"""EU member states (2021 on) plus Monaco: no customs formalities between them.

The UK left the customs union on 2021-01-01; Switzerland was never in it.
"""


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km.

    Paris to New York is about 5,837 km:

    >>> round(great_circle_km(48.8566, 2.3522, 40.7128, -74.0060))
    5837
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def continent(country: str) -> str:
    """The continent of an ISO alpha-2 country code (KeyError when unknown)."""
    return CONTINENT_OF[country]


def crosses_customs_border(origin_country: str, destination_country: str) -> bool:
    """True when a shipment between the two countries clears customs.

    >>> crosses_customs_border("DE", "FR"), crosses_customs_border("DE", "CH")
    (False, True)
    """
    if origin_country == destination_country:
        return False
    return not (origin_country in EU_CUSTOMS_UNION and destination_country in EU_CUSTOMS_UNION)
