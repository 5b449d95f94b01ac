"""Quotas: planners hold a site's manufacturing slots for a center, market or trial.

A quota holds a number of slots (or a share of the site's starts) over a period; slots
its holder has not used return to everybody ``release_days`` before their day.
Bookings honour quotas (:mod:`cartnet.service.quota_hold` puts them into every capacity
snapshot): a booking that would eat into another holder's held slots is refused with
``quota-held``. Planners create, change and retire quotas; each is an audit entry with
the planner and a reason, and a retired quota stays in the table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.chain import Change
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.network.model import Network
from cartnet.schedule.capacity import HolderKind
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext, audit_value, new_id
from cartnet.service.errors import Invalid, NotFound
from cartnet.service.quota_hold import as_quota, quota_use
from cartnet.service.schemas import Day, LongText, Name, Request, Response
from cartnet.store.evidence import written_fields
from cartnet.store.tables import QuotaRow

QUOTA_KEEPERS = frozenset({Role.PLANNER})
MAX_PERIOD_DAYS = 731
"""A quota's period is at most two years: plan further ahead with the network design."""
Slots = Annotated[int, Field(ge=0, le=100_000)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
ReleaseDays = Annotated[int, Field(ge=0, le=365)]


class NewQuota(Request):
    """A quota to hold: give ``slots`` or ``share``, not both."""

    site: Name
    holder_kind: HolderKind
    holder: Name
    """A center id, a market id, or a trial id the site is approved for."""
    slots: Slots | None = None
    share: Share | None = None
    """Share of the site's manufacturing starts in the period (0-1)."""
    period_start: Day
    period_end: Day
    """Last day of the period, included."""
    release_days: ReleaseDays = 14
    reason_code: ReasonCode
    reason_text: LongText | None = None


class QuotaChange(Request):
    """What changes (at least one field); ``slots`` replaces a share and vice versa."""

    slots: Slots | None = None
    share: Share | None = None
    period_start: Day | None = None
    period_end: Day | None = None
    release_days: ReleaseDays | None = None
    reason_code: ReasonCode
    reason_text: LongText | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> QuotaChange:
        if self.slots is not None and self.share is not None:
            raise ValueError("give slots or share, not both")
        return self


class QuotaRetirement(Request):
    reason_code: ReasonCode
    reason_text: LongText | None = None


class QuotaView(Response):
    id: str
    site: str
    site_name: str
    holder_kind: HolderKind
    holder: str
    slots: int | None
    share: float | None
    period_start: date
    period_end: date
    release_days: int
    held: int
    """Slots the quota holds in all (a share turned into slots)."""
    used: int
    """Of those, slots its holder's bookings have taken."""
    unused: int
    created_at: datetime
    created_by: str
    retired_at: datetime | None
    retired_by: str | None


class QuotaList(Response):
    items: list[QuotaView]


def _check(
    ctx: ServiceContext,
    site: str,
    kind: HolderKind,
    holder: str,
    slots: int | None,
    share: float | None,
    start: date,
    end: date,
) -> None:
    """Refuse a quota that cannot hold anything sensible, naming the field at fault."""
    net = ctx.network
    if site not in {s.id for s in net.sites}:
        raise Invalid(f"unknown manufacturing site {site!r}", field="site")
    _check_holder(net, site, kind, holder)
    if (slots is None) == (share is None):
        raise Invalid("give the quota's slots or its share, not both", field="slots")
    if end < start:
        raise Invalid(f"the period ends ({end}) before it starts ({start})", field="period_end")
    today = ctx.today()
    if end < today:
        raise Invalid(f"the period ends ({end}) before today ({today})", field="period_end")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise Invalid(f"a quota's period is at most {MAX_PERIOD_DAYS} days", field="period_end")
    capacity = ctx.slots.period_starts(site, start, end, today)
    if slots is not None and slots > capacity:
        raise Invalid(
            f"{slots} slots is more than the {capacity} manufacturing starts {site} has "
            f"from {start} to {end}",
            field="slots",
        )


def _check_holder(net: Network, site: str, kind: HolderKind, holder: str) -> None:
    if kind is HolderKind.CENTER:
        known = [c.id for c in net.treatment_centers]
    elif kind is HolderKind.MARKET:
        known = [m.id for m in net.markets]
    else:
        known = sorted({a.trial for a in net.site(site).approvals if a.trial})
    if holder not in known:
        what = "trials approved at " + site if kind is HolderKind.TRIAL else f"{kind.value}s"
        raise Invalid(
            f"no {kind.value} {holder!r}; {what}: {', '.join(known) or 'none'}", field="holder"
        )


def _views(ctx: ServiceContext, session: Session, rows: list[QuotaRow]) -> list[QuotaView]:
    known = {s.id for s in ctx.network.sites}
    shown = [r for r in rows if r.site in known]
    today = ctx.today()
    quotas = [as_quota(r, ctx.slots.period_starts, today) for r in shown]
    used = quota_use(session, quotas)
    return [
        QuotaView(
            id=r.id,
            site=r.site,
            site_name=ctx.network.site(r.site).name,
            holder_kind=HolderKind(r.holder_kind),
            holder=r.holder,
            slots=r.slots,
            share=r.share,
            period_start=r.period_start,
            period_end=r.period_end,
            release_days=r.release_days,
            held=q.slots or 0,
            used=u,
            unused=max(0, (q.slots or 0) - u),
            created_at=r.created_at,
            created_by=r.created_by,
            retired_at=r.retired_at,
            retired_by=r.retired_by,
        )
        for r, q, u in zip(shown, quotas, used, strict=True)
    ]


def _load(session: Session, quota_id: str, *, for_update: bool = False) -> QuotaRow:
    query = select(QuotaRow).where(QuotaRow.id == quota_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"no quota {quota_id!r}", field="quota_id")
    return row


def list_quotas(
    ctx: ServiceContext,
    principal: Principal,
    *,
    site: str | None = None,
    retired: bool = False,
) -> QuotaList:
    """Quotas, newest period first, with how much of each is used; ``retired`` ones too."""
    principal.require(QUOTA_KEEPERS, "read quotas")
    query = select(QuotaRow)
    if site is not None:
        query = query.where(QuotaRow.site == site)
    if not retired:
        query = query.where(QuotaRow.retired_at.is_(None))
    query = query.order_by(QuotaRow.period_start.desc(), QuotaRow.created_at, QuotaRow.id)
    with ctx.reading() as session:
        return QuotaList(items=_views(ctx, session, list(session.scalars(query))))


def get_quota(ctx: ServiceContext, principal: Principal, quota_id: str) -> QuotaView:
    principal.require(QUOTA_KEEPERS, "read quotas")
    with ctx.reading() as session:
        return _views(ctx, session, [_load(session, quota_id)])[0]


def create_quota(ctx: ServiceContext, principal: Principal, new: NewQuota) -> QuotaView:
    """Hold slots for a holder from now on; audited with the planner and the reason."""
    principal.require(QUOTA_KEEPERS, "set quotas")
    _check(
        ctx, new.site, new.holder_kind, new.holder, new.slots, new.share,
        new.period_start, new.period_end,
    )  # fmt: skip
    with ctx.transaction() as session:
        row = QuotaRow(
            id=new_id("quo"),
            site=new.site,
            holder_kind=new.holder_kind.value,
            holder=new.holder,
            slots=new.slots,
            share=new.share,
            period_start=new.period_start,
            period_end=new.period_end,
            release_days=new.release_days,
            created_at=ctx.now(),
            created_by=principal.user_id,
        )
        session.add(row)
        session.flush()
        fields = written_fields("quotas")
        values = [(name, None, audit_value(getattr(row, name))) for name in fields]
        ctx.record(
            session, principal, AuditAction.CREATE, "quota", row.id, values,
            reason_code=new.reason_code, reason_text=new.reason_text,
        )  # fmt: skip
        return _views(ctx, session, [row])[0]


def change_quota(
    ctx: ServiceContext, principal: Principal, quota_id: str, body: QuotaChange
) -> QuotaView:
    """Change a quota's amount, period or release rule; the old values stay in the trail."""
    principal.require(QUOTA_KEEPERS, "change quotas")
    with ctx.transaction() as session:
        row = _load(session, quota_id, for_update=True)
        if row.retired_at is not None:
            raise Invalid(f"quota {quota_id} is retired; set a new one", field="quota_id")
        slots, share = row.slots, row.share
        if body.slots is not None or body.share is not None:
            slots, share = body.slots, body.share
        start = body.period_start or row.period_start
        end = body.period_end or row.period_end
        release = row.release_days if body.release_days is None else body.release_days
        _check(ctx, row.site, HolderKind(row.holder_kind), row.holder, slots, share, start, end)
        new = {
            "slots": slots,
            "share": share,
            "period_start": start,
            "period_end": end,
            "release_days": release,
        }
        changes: list[Change] = []
        for name, value in new.items():
            old = getattr(row, name)
            if old != value:
                changes.append((name, audit_value(old), audit_value(value)))
                setattr(row, name, value)
        if not changes:
            raise Invalid("nothing changes: the quota has these values already", field="body")
        session.flush()
        ctx.record(
            session, principal, AuditAction.UPDATE, "quota", row.id, changes,
            reason_code=body.reason_code, reason_text=body.reason_text,
        )  # fmt: skip
        return _views(ctx, session, [row])[0]


def retire_quota(
    ctx: ServiceContext, principal: Principal, quota_id: str, body: QuotaRetirement
) -> QuotaView:
    """Stop holding the quota's slots; the row stays, marked retired, with the reason."""
    principal.require(QUOTA_KEEPERS, "retire quotas")
    with ctx.transaction() as session:
        row = _load(session, quota_id, for_update=True)
        if row.retired_at is not None:
            raise Invalid(f"quota {quota_id} is retired already", field="quota_id")
        row.retired_at = ctx.now()
        row.retired_by = principal.user_id
        session.flush()
        ctx.record(
            session,
            principal,
            AuditAction.VOID,
            "quota",
            row.id,
            [
                ("retired_at", None, audit_value(row.retired_at)),
                ("retired_by", None, row.retired_by),
            ],
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return _views(ctx, session, [row])[0]
