"""Applying an optimization plan to real orders: a signed decision, then reschedules.

A plan (:mod:`cartnet.service.replan`) books nothing. The planner selects moves and
signs (password re-entry, meaning *approval*); the decision is one
``plan_applications`` record, which the e-signature binds (21 CFR 11.70: the selected
moves, the job, the signer, the time). Each selected move is then a reschedule through
the normal use case (:func:`cartnet.service.orders.booking.reschedule`), each in its own
transaction, with the reason ``network_optimization`` and the application's id.

Not all or nothing: a move whose order changed since the plan was made (another
booking, another state) is refused for that order with the reason, and the others
still go. A move refused because its slot is still held by another selected order
that moves away is tried again once that order has moved; moves are retried while a
pass makes progress. The audit trail holds the signed application and every
reschedule that went; the outcome lists the refused ones with why.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from cartnet.ledger.canonical import canonical_json
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.signatures import SignatureMeaning, SignatureRefusedError, record_hash, sign
from cartnet.service import jobs, orders
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Invalid, ServiceError, Unauthorized
from cartnet.service.logins import DatabasePasswordCheck
from cartnet.service.replan import SCHEMA
from cartnet.service.schemas import Reschedule
from cartnet.service.steps import signature_row
from cartnet.service.trail import record_signature
from cartnet.store.evidence import sha256_text, written_fields
from cartnet.store.records import stored_signature
from cartnet.store.tables import OrderRow, PlanApplicationRow, SignatureRow

RECORD_TYPE = "plan_application"
MEANING = SignatureMeaning.APPROVAL
PASSWORD_FIELD = "signature_password"
ALREADY = "applied already; not moved again"
FINAL = ("stale-plan", "illegal-transition")
"""Refusals a later try cannot change (a capacity refusal may, once another order moved)."""


class MoveOutcome(BaseModel):
    order: str
    applied: bool
    message: str


class Application(BaseModel):
    """A signed application and what became of each selected move."""

    id: str
    signature: str
    """The signature's manifestation: printed name, id, meaning, time (11.50)."""
    outcomes: list[MoveOutcome]

    @property
    def applied(self) -> int:
        return sum(o.applied for o in self.outcomes)


class MoveState(BaseModel):
    """Where a move's order stands now: ``pending``, ``applied`` or ``changed`` (stale)."""

    state: str
    now: str


def plan_moves(ctx: ServiceContext, principal: Principal, job_id: str) -> list[dict[str, Any]]:
    """The moves of an optimization job of the planner's."""
    document = jobs.job_result(ctx, principal, job_id)
    if document.get("schema") != SCHEMA:
        raise Invalid(f"job {job_id} is not an optimization of the open orders", field="moves")
    return list(document["moves"])


def apply_moves(
    ctx: ServiceContext, principal: Principal, job_id: str, selected: list[str], password: str
) -> Application:
    """Sign the selected moves of the plan, then reschedule each order (see the module)."""
    principal.require(jobs.PLANNERS, "apply optimization plans")
    moves = {m["order"]: m for m in plan_moves(ctx, principal, job_id)}
    chosen = list(dict.fromkeys(selected))
    if not chosen:
        raise Invalid("select at least one move to apply", field="moves")
    unknown = [o for o in chosen if o not in moves]
    if unknown:
        raise Invalid(f"the plan has no move of order {unknown[0]!r}", field="moves")
    states = move_states(ctx, principal, [moves[o] for o in chosen])
    done = {o for o in chosen if states[o].state == "applied"}
    todo = [o for o in chosen if o not in done]
    if not todo:
        raise Invalid("the selected moves are applied already", field="moves")
    picked = [_signed_move(moves[o]) for o in todo]
    application = _sign(ctx, principal, job_id, picked, password)
    outcomes = _reschedule_all(ctx, principal, job_id, application[0], [moves[o] for o in todo])
    for o in done:
        outcomes[o] = MoveOutcome(order=o, applied=False, message=ALREADY)
    return Application(
        id=application[0],
        signature=application[1],
        outcomes=[outcomes[o] for o in chosen],
    )


def _signed_move(move: dict[str, Any]) -> dict[str, Any]:
    """What the signature binds of a move: the order, from where, to where."""
    return {
        "order": move["order"],
        "from_site": move["from"]["site"],
        "from_start": move["from"]["start"],
        "to_site": move["to"]["site"],
        "to_start": move["to"]["start"],
    }


def _sign(
    ctx: ServiceContext,
    principal: Principal,
    job_id: str,
    picked: list[dict[str, Any]],
    password: str,
) -> tuple[str, str]:
    """Record the application and its signature, or nothing (wrong password)."""
    if not password:
        raise Invalid("re-enter your password to sign", field=PASSWORD_FIELD)
    with ctx.transaction() as session:
        check = DatabasePasswordCheck(ctx, session)
        reauthentication = check.reauthenticate(principal.user_id, password)
        now = ctx.now()  # the signature follows the password re-entry
        row = PlanApplicationRow(
            id="apl_" + secrets.token_hex(10),
            job_id=job_id,
            applied_at=now,
            actor_id=principal.user_id,
            actor_name=principal.name,
            moves=canonical_json(picked).decode(),
            record_hash="",
        )
        content = {
            "record_type": RECORD_TYPE,
            "id": row.id,
            "job_id": job_id,
            "applied_at": now,
            "actor_id": principal.user_id,
            "moves": picked,
        }
        row.record_hash = record_hash(content)
        try:
            sig = sign(
                reauthentication,
                principal.actor,
                MEANING,
                RECORD_TYPE,
                row.id,
                content,
                signed_at=now,
                key=ctx.signing_key,
            )
        except SignatureRefusedError:
            raise Unauthorized("wrong password", field=PASSWORD_FIELD) from None
        ctx.add_record(
            session,
            principal,
            row,
            RECORD_TYPE,
            lambda r: str(r.id),
            written_fields("plan_applications"),
            also=[("moves_sha256", None, sha256_text(row.moves))],
        )
        record_signature(ctx, session, principal, row.id, signature_row(sig))
        return row.id, sig.manifestation()


def _reschedule_all(
    ctx: ServiceContext,
    principal: Principal,
    job_id: str,
    application_id: str,
    moves: list[dict[str, Any]],
) -> dict[str, MoveOutcome]:
    outcomes: dict[str, MoveOutcome] = {}
    pending = moves
    while pending:
        again: list[dict[str, Any]] = []
        for move in pending:
            try:
                _reschedule(ctx, principal, job_id, application_id, move)
            except ServiceError as err:
                outcomes[move["order"]] = MoveOutcome(
                    order=move["order"], applied=False, message=err.detail
                )
                if isinstance(err, Conflict) and err.code not in FINAL:
                    again.append(move)
            else:
                to = move["to"]
                outcomes[move["order"]] = MoveOutcome(
                    order=move["order"],
                    applied=True,
                    message=f"rescheduled to {to['site_name']}, start {to['start']}",
                )
        if len(again) == len(pending):
            break  # no progress: the refusals stand
        pending = again
    return outcomes


def _reschedule(
    ctx: ServiceContext,
    principal: Principal,
    job_id: str,
    application_id: str,
    move: dict[str, Any],
) -> None:
    source, target = move["from"], move["to"]
    orders.reschedule(
        ctx,
        principal,
        move["order"],
        Reschedule(
            site=target["site"],
            start=date.fromisoformat(target["start"]),
            reason_code=ReasonCode.NETWORK_OPTIMIZATION,
            reason_text=f"optimization plan {job_id}, signed application {application_id}",
        ),
        expect=(source["site"], date.fromisoformat(source["start"])),
    )


def move_states(
    ctx: ServiceContext, principal: Principal, moves: list[dict[str, Any]]
) -> dict[str, MoveState]:
    """Each move's order now: still as planned from, moved as planned to, or changed."""
    principal.require(jobs.PLANNERS, "see optimization plans")
    ids = [m["order"] for m in moves]
    with ctx.reading() as session:
        rows = {r.id: r for r in session.scalars(select(OrderRow).where(OrderRow.id.in_(ids)))}
    states: dict[str, MoveState] = {}
    for move in moves:
        row = rows.get(move["order"])
        if row is None:
            states[move["order"]] = MoveState(state="changed", now="no such order any more")
            continue
        at = (row.site, None if row.start_on is None else row.start_on.isoformat())
        now = f"{row.state}, {row.site or 'no site'} start {row.start_on or '—'}"
        if at == (move["to"]["site"], move["to"]["start"]):
            state = "applied"
        elif at == (move["from"]["site"], move["from"]["start"]) and (
            row.state == OrderState.BOOKED.value
        ):
            state = "pending"
        else:
            state = "changed"
        states[move["order"]] = MoveState(state=state, now=now)
    return states


class SignedApplication(BaseModel):
    id: str
    applied_at: datetime
    moves: int
    signatures: list[str]


def applications(ctx: ServiceContext, principal: Principal, job_id: str) -> list[SignedApplication]:
    """The signed applications of a job of the planner's, oldest first, with signatures."""
    jobs.get_job(ctx, principal, job_id)  # the owner's only
    with ctx.reading() as session:
        rows = session.scalars(
            select(PlanApplicationRow)
            .where(PlanApplicationRow.job_id == job_id)
            .order_by(PlanApplicationRow.applied_at, PlanApplicationRow.id)
        ).all()
        signed: dict[str, list[str]] = {}
        if rows:
            for sig in session.scalars(
                select(SignatureRow).where(
                    SignatureRow.record_type == RECORD_TYPE,
                    SignatureRow.record_id.in_([r.id for r in rows]),
                )
            ):
                signed.setdefault(sig.record_id, []).append(stored_signature(sig).manifestation())
        return [
            SignedApplication(
                id=r.id,
                applied_at=r.applied_at,
                moves=len(json.loads(r.moves)),
                signatures=signed.get(r.id, []),
            )
            for r in rows
        ]
