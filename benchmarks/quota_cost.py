"""What do quotas cost a booking? Offers and bookings with quotas in force, and without.

Usage: python benchmarks/quota_cost.py [--orders 300] [--quotas 2] [--postgres URL]

On a fresh database (SQLite file; PostgreSQL too with ``--postgres``) the script enrols
``--orders`` orders spread over the kymriah-2020 centers of the US and Europe, then in
one thread asks each order's offers (``orders.offers``) and books its first chain
(``orders.book``), timing both. The run is made twice on fresh databases: the
yardstick without quotas, then with ``--quotas`` quotas at every site (each for one of
its markets' centers, two slots over the next 200 days: they are loaded, counted and
locked by every booking but rarely bind). It prints the median time of each call and
the ratio with quotas over without.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.schedule.capacity import HolderKind
from cartnet.service import orders, quotas
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import ServiceError
from cartnet.service.quotas import NewQuota
from cartnet.service.schemas import BookChain, NewOrder, PatientIdentity
from cartnet.service.settings import ServiceSettings, new_key

PLANNER = Principal("u-bench-planner", "planner", "Bench Planner", Role.PLANNER)
MARKETS = {"US", "EU"}
PATIENT = PatientIdentity(
    given_name="Bench", family_name="Mark", date_of_birth=date(1970, 1, 1), hospital_number="B-1"
)


def run(url: str, n_orders: int, n_quotas: int) -> tuple[list[float], list[float], int]:
    """Offer and booking times (ms) of ``n_orders`` orders, and how many were booked."""
    settings = ServiceSettings(database_url=url, patient_key=new_key(), signing_key=new_key())
    ctx = ServiceContext.open(settings)
    try:
        net, today = ctx.network, ctx.today()
        centers = [c for c in net.treatment_centers if c.market in MARKETS]
        for site in net.sites:
            eligible = [c for c in centers if any(a.regulator.value in ("FDA", "EMA")
                                                  for a in site.approvals)]  # fmt: skip
            for k in range(min(n_quotas, len(eligible))):
                quotas.create_quota(
                    ctx, PLANNER,
                    NewQuota(
                        site=site.id, holder_kind=HolderKind.CENTER, holder=eligible[k].id,
                        slots=2, period_start=today + timedelta(days=1),
                        period_end=today + timedelta(days=200), release_days=7,
                        reason_code=ReasonCode.CAPACITY_CHANGE,
                    ),
                )  # fmt: skip
        offer_ms: list[float] = []
        book_ms: list[float] = []
        booked = 0
        for i in range(n_orders):
            center = centers[i % len(centers)]
            who = Principal(f"u-{center.id}", center.id, "Bench Coordinator",
                            Role.CENTER_COORDINATOR, center=center.id)  # fmt: skip
            product = center.products[0]
            new = NewOrder(product=product, earliest_apheresis=today + timedelta(days=1 + i % 150),
                           patient=PATIENT)  # fmt: skip
            order = orders.enroll(ctx, who, new)
            t0 = time.perf_counter()
            found = orders.offers(ctx, who, order.id)
            offer_ms.append(1000 * (time.perf_counter() - t0))
            if not found.offers:
                continue
            first = found.offers[0]
            t0 = time.perf_counter()
            try:
                orders.book(ctx, who, order.id, BookChain(site=first.site, start=first.start))
                booked += 1
            except ServiceError:
                pass
            book_ms.append(1000 * (time.perf_counter() - t0))
        return offer_ms, book_ms, booked
    finally:
        ctx.close()


def fresh(kind: str, folder: Path, postgres: str | None) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite+pysqlite:///{folder / f'{uuid.uuid4().hex}.db'}", None
    assert postgres is not None
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    schema = f"cartnet_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), (admin, schema)


def drop(handle: object) -> None:
    if handle is None:
        return
    admin, schema = handle  # type: ignore[misc]
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--quotas", type=int, default=2, help="quotas per site")
    parser.add_argument("--postgres", default=None, help="also on this PostgreSQL database")
    args = parser.parse_args()
    backends = ["sqlite", *(["postgresql"] if args.postgres else [])]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in backends:
            medians = {}
            for label, n_quotas in (("without quotas", 0), ("with quotas", args.quotas)):
                url, handle = fresh(kind, Path(tmp), args.postgres)
                try:
                    offer_ms, book_ms, booked = run(url, args.orders, n_quotas)
                finally:
                    drop(handle)
                medians[label] = (statistics.median(offer_ms), statistics.median(book_ms))
                print(
                    f"{kind:10} {label:15} offers {medians[label][0]:6.1f} ms  "
                    f"booking {medians[label][1]:6.1f} ms  (median; {booked} of "
                    f"{args.orders} booked)"
                )
            with_q, without = medians["with quotas"], medians["without quotas"]
            print(
                f"{kind:10} ratio with/without quotas: offers {with_q[0] / without[0]:.2f}x, "
                f"booking {with_q[1] / without[1]:.2f}x"
            )


if __name__ == "__main__":
    main()
