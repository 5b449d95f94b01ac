"""Large synthetic networks for scale tests and benchmarks.

``generate_network(100, 2000)`` builds a network of 100 manufacturing sites and
2,000 treatment centers in the eight regulatory markets of ``Regulator``, from a
seed, in a fraction of a second. The figures are realistic in kind rather than
real: they follow the packaged ``kymriah-2020`` network where it has a figure.

* Markets: US (FDA), EU (EMA, the 27 member states), CH (Swissmedic), UK (MHRA,
  GB), JP (PMDA), CN (NMPA), AU (TGA), CA (Health Canada).
* Places: sites and centers sit near anchor cities of their country (the table
  ``cities.csv`` of this package), jittered by up to a tenth of a degree (a few
  hundredths for coastal or border cities). Most sites and most demand are in the US
  and the EU; EU countries are weighted by population.
* Sites: 2-30 lines (lognormal, median 6), owned by the sponsor or run by a contract
  operator; manufacturing lognormal with mean 7-9 d; QC release triangular around
  7/8/14 d; most close at weekends and on a few 2025 public holidays, some have a
  maintenance shutdown.
* Approvals: each site is approved commercially by its home regulator, and by a
  random subset of the others; most approvals took effect before the reference date,
  a few (``PENDING_SHARE``) take effect after it. Every market has at least two sites
  eligible for commercial supply of every product on the reference date, and no group
  of markets is short of capacity: more sites are approved until the demand could be
  served with no site above 90 % utilisation (see ``coverage.balance``).
* Clinical trials (``SYN-101`` ...) of about 60 patients a year each run at 2-8
  centers in each of 1-3 markets, with clinical approvals at sites of at least six
  lines per trial market (home-market sites first), sometimes one more from a later
  date.
* Demand: ``patients_per_year`` in all (8 % of it clinical), or by default 75 % of
  the network's capacity, where a patient costs ``manufacturing mean / (1 −
  out-of-specification probability)`` line-days (about 8.6 for an 8-day process).
  Centers differ in size (lognormal); the largest collect apheresis on 2 or 3 chairs
  a day (more if their demand needs it).
* Products: ``product-01`` ... made from cryopreserved apheresis; every second product
  uses fresh material (72 or 96 h stability), made only at the half of the sites that
  take fresh material and approved only on the site's own continent.
* A few listed lanes (same-city couriers, long-haul lanes with two customs days) and
  two scenarios: ``add-capacity`` (more lines at a tenth of the sites) and
  ``grow-30`` (commercial demand grows 30 % a year).

The same arguments always give the same network (one ``numpy`` Generator seeded
with ``seed`` drives every draw). Every object carries the assumption
``synthetic (generated, seed N)``.

Modules, in the order the generator uses them: ``world`` (markets, cities, operators,
holidays), ``draws`` (the seeded draws every part shares), ``apportion``, ``sites``,
``centers``, ``coverage`` (approvals until demand fits), ``trials``, ``demand``,
``lanes``, ``scenarios``, ``generator`` (assembles and validates) and ``writer``.
"""

from __future__ import annotations

from cartnet.network.synthetic.coverage import BALANCE_SPREAD, BALANCE_UTILIZATION
from cartnet.network.synthetic.demand import CLINICAL_SHARE, TARGET_UTILIZATION
from cartnet.network.synthetic.draws import PENDING_SHARE
from cartnet.network.synthetic.generator import generate_network
from cartnet.network.synthetic.trials import TRIAL_LINES, TRIAL_PATIENTS
from cartnet.network.synthetic.world import (
    ANCHORS,
    CENTER_KINDS,
    CONTRACT_OPERATORS,
    EU_MEMBERS,
    MARKETS,
    REFERENCE_DATE,
    SPONSOR,
    Anchor,
    MarketSpec,
)
from cartnet.network.synthetic.writer import write_network_yaml

__all__ = [
    "ANCHORS",
    "BALANCE_SPREAD",
    "BALANCE_UTILIZATION",
    "CENTER_KINDS",
    "CLINICAL_SHARE",
    "CONTRACT_OPERATORS",
    "EU_MEMBERS",
    "MARKETS",
    "PENDING_SHARE",
    "REFERENCE_DATE",
    "SPONSOR",
    "TARGET_UTILIZATION",
    "TRIAL_LINES",
    "TRIAL_PATIENTS",
    "Anchor",
    "MarketSpec",
    "generate_network",
    "write_network_yaml",
]
