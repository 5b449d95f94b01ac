"""``verify`` against tampering with the records behind the trail (issue 13, finding 3).

Each test uses the service as a client would, then changes the database directly
(SQL through the store's engine, no key) the way an attacker with database access
would, and checks that ``verify`` names exactly that change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select, text, update
from tests.api.test_custody import accepted, collect, handoff, qc, to_qc
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.ledger.canonical import GENESIS_HASH
from cartnet.ledger.entry import AuditAction, AuditEntry, FieldChange
from cartnet.service.accounts import SYSTEM
from cartnet.service.settings import new_key
from cartnet.service.verification import verify_database
from cartnet.store import AuditRepository, make_session_factory
from cartnet.store.tables import (
    AuditEntryRow,
    AuditHeadRow,
    CollectionRow,
    OrderStepRow,
    QcResultRow,
    SignatureRow,
    SlotUsageRow,
)
from cartnet.store.verification import Outcome, VerifyReport

runner = CliRunner()


def report(api: Any) -> VerifyReport:
    """What ``verify`` finds, with the server's signing key."""
    with make_session_factory(api.ctx.engine)() as session, session.begin():
        return verify_database(session, api.ctx.signing_key)


def problems(api: Any) -> str:
    found = report(api)
    return "\n".join(found.problems)


def sql(api: Any, statement: str, **params: Any) -> None:
    with api.ctx.engine.begin() as connection:
        connection.execute(text(statement), params)


def one(api: Any, statement: Any) -> Any:
    with api.ctx.engine.connect() as connection:
        return connection.execute(statement).one()


def collected(api: Any) -> tuple[dict[str, Any], Any, Any]:
    """A booked and collected order, its signed collection step and that step's signature."""
    order = api.enroll()
    api.book_first(order["id"])
    collect(api, order)
    step = one(
        api,
        select(OrderStepRow).where(
            OrderStepRow.order_id == order["id"], OrderStepRow.event == "collect_apheresis"
        ),
    )
    signature = one(api, select(SignatureRow).where(SignatureRow.record_id == step.id))
    assert report(api).outcome is Outcome.VERIFIED, report(api)
    return order, step, signature


def test_a_deleted_signature_is_named(api: Any) -> None:
    _, step, signature = collected(api)
    sql(api, "DELETE FROM signatures WHERE id = :id", id=signature.id)
    found = problems(api)
    name = f"signature {step.order_id}/signature/{signature.id}"
    assert f"{name}: in the audit trail but not in the signatures table" in found, found


def test_a_deleted_step_with_its_signature_is_named(api: Any) -> None:
    _, step, signature = collected(api)
    sql(api, "DELETE FROM signatures WHERE record_id = :id", id=step.id)
    sql(api, "DELETE FROM order_steps WHERE id = :id", id=step.id)
    found = problems(api)
    assert f"order step {step.order_id}/step/{step.id}: in the audit trail but not in the " \
           "order_steps table" in found, found  # fmt: skip
    assert f"signature {step.order_id}/signature/{signature.id}: in the " \
           "audit trail but not in the signatures table" in found, found  # fmt: skip


def test_a_signed_steps_actor_and_time_edited_are_named(api: Any) -> None:
    _, step, _ = collected(api)
    sql(
        api,
        "UPDATE order_steps SET actor_id = 'usr_mallory', actor_name = 'Mallory', "
        "role = 'qa', at = :at WHERE id = :id",
        id=step.id,
        at=step.at.replace(year=step.at.year - 1).replace(tzinfo=None)
        if api.ctx.engine.dialect.name == "sqlite"
        else step.at.replace(year=step.at.year - 1),
    )
    found = problems(api)
    for column, value in (("actor_id", "usr_mallory"), ("actor_name", "Mallory"), ("role", "qa")):
        assert f"order step {step.id}: {column} is {value!r} in the order_steps table" in found
    assert f"order step {step.id}: at is " in found, found


def test_who_performed_a_handoff_edited_is_named(api: Any) -> None:
    order = api.enroll()
    api.book_first(order["id"])
    custody_id = accepted(api, "coordinator", order, "collection")["custody"]["id"]
    sql(
        api,
        "UPDATE custody_events SET actor_id = 'usr_x', actor_name = 'Someone Else', "
        "role = 'logistics', organisation = 'Elsewhere Inc', utc_offset_minutes = 60 "
        "WHERE id = :id",
        id=custody_id,
    )
    found = problems(api)
    for column, value in (
        ("actor_id", "'usr_x'"),
        ("actor_name", "'Someone Else'"),
        ("role", "'logistics'"),
        ("organisation", "'Elsewhere Inc'"),
        ("utc_offset_minutes", "60"),
    ):
        assert f"custody event {custody_id}: {column} is {value} in the custody_events" in found


def test_who_recorded_qc_and_who_raised_or_closed_an_exception_edited_is_named(
    api: Any,
) -> None:
    order = to_qc(api)
    result = qc(api, order["id"], passed=True)
    wrong = handoff(api, "qa", {**order, "coi": api.enroll()["coi"]}, "release",
                    signatures=api.sign("qa"))  # fmt: skip
    assert wrong.status_code == 409, wrong.text
    (exception,) = api.get("qa", f"/orders/{order['id']}/exceptions").json()
    close = {"reason_code": "deviation", "reason_text": "wrong bag caught; none used"}
    closed = api.post("qa", f"/orders/{order['id']}/exceptions/{exception['id']}/close", close)
    assert closed.status_code == 200, closed.text
    assert report(api).outcome is Outcome.VERIFIED

    sql(api, "UPDATE qc_results SET recorded_by = 'usr_x' WHERE id = :id", id=result["id"])
    sql(api, "UPDATE order_exceptions SET closed_by = 'usr_y', raised_by = 'usr_z' "
             "WHERE id = :id", id=exception["id"])  # fmt: skip
    found = problems(api)
    assert f"QC result {result['id']}: recorded_by is 'usr_x' in the qc_results table" in found
    assert f"exception {exception['id']}: closed_by is 'usr_y'" in found, found
    assert f"exception {exception['id']}: raised_by is 'usr_z'" in found, found


def test_slot_usage_and_collection_rows_changed_are_named(api: Any) -> None:
    order, _, _ = collected(api)
    usage = one(api, select(SlotUsageRow).where(SlotUsageRow.kind == "manufacturing"))
    collection = one(api, select(CollectionRow).where(CollectionRow.order_id == order["id"]))
    sql(
        api,
        "UPDATE slot_usage SET booked = booked + 5 WHERE kind = 'manufacturing' "
        "AND resource = :resource AND day = :day",
        resource=usage.resource,
        day=usage.day,
    )
    sql(api, "UPDATE collections SET din = 'W999926999999' WHERE id = :id", id=collection.id)
    sql(api, "INSERT INTO slot_usage (kind, resource, day, booked) "
             "VALUES ('apheresis', 'dana-farber', '2031-01-02', 4)")  # fmt: skip
    found = problems(api)
    where = f"manufacturing/{usage.resource}/{usage.day.isoformat()}"
    assert f"slot usage {where}: booked is {usage.booked + 5} in the slot_usage table but " \
           f"{usage.booked} in the audit trail" in found, found  # fmt: skip
    assert f"collection {collection.id}: din is 'W999926999999'" in found, found
    assert "slot usage apheresis/dana-farber/2031-01-02: has no audit trail" in found, found

    sql(api, "DELETE FROM collections WHERE id = :id", id=collection.id)
    assert "not in the collections table (deleted outside cartnet)" in problems(api)


def test_a_swapped_patient_identity_is_named(api: Any) -> None:
    """Two orders' sealed identities exchanged: each is still valid, but the wrong one."""
    first, second = api.enroll(), api.enroll()
    sealed = {
        order["id"]: one(api, text("SELECT patient_identity FROM orders WHERE id = :id")
                         .bindparams(id=order["id"]))[0]
        for order in (first, second)
    }  # fmt: skip
    for order, other in ((first, second), (second, first)):
        sql(api, "UPDATE orders SET patient_identity = :sealed WHERE id = :id",
            sealed=sealed[other["id"]], id=order["id"])  # fmt: skip
    found = problems(api)
    for order in (first, second):
        assert f"order {order['id']}: its patient_identity no longer matches" in found, found


# --- the CLI's outcome ----------------------------------------------------------------------


def _verify(api: Any, *options: str) -> Any:
    url = api.ctx.engine.url.render_as_string(hide_password=False)
    return runner.invoke(app, ["audit", "verify", "--db", url, *options])


def test_without_the_signing_key_verify_is_incomplete_not_verified(
    api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Exit 0 only with every check made: no key, or another key, is exit 3."""
    collected(api)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # no key file there either
    monkeypatch.delenv("CARTNET_SIGNING_KEY", raising=False)
    result = _verify(api)
    assert result.exit_code == int(Outcome.INCOMPLETE) == 3, result.output
    assert "signature seals not checked: no signing key" in result.output
    assert "verification incomplete" in result.output

    monkeypatch.setenv("CARTNET_SIGNING_KEY", new_key())
    other = _verify(api)
    assert other.exit_code == 3, other.output
    assert "not the one this database was written with" in other.output

    monkeypatch.setenv("CARTNET_SIGNING_KEY", api.ctx.settings.signing_key)
    assert _verify(api).exit_code == 0

    sql(api, "DELETE FROM signatures")
    monkeypatch.delenv("CARTNET_SIGNING_KEY")
    tampered = _verify(api)
    assert tampered.exit_code == 1, "a problem wins over what could not be checked"
    assert "not in the signatures table" in tampered.output


def test_verify_help_documents_the_exit_statuses() -> None:
    shown = runner.invoke(app, ["audit", "verify", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "3 incomplete" in " ".join(shown.output.split())


def test_records_older_than_the_trail_coverage_are_notices_not_problems(api: Any) -> None:
    """A database written before migration 0007: old rows are 'not checked', not tampered."""
    order = to_qc(api)
    with make_session_factory(api.ctx.engine)() as session, session.begin():
        now = api.ctx.now()
        row = QcResultRow(order_id=order["id"], test="endotoxin", result="<0.5 EU/mL",
                      specification="<5 EU/mL", passed=True, tested_at=now, recorded_at=now,
                      recorded_by="usr_old")  # fmt: skip
        session.add(row)
        session.flush()
        api.ctx.audit.append(  # what the code before 0007 wrote: no recorded_by/at, order_id
            session, SYSTEM.actor, AuditAction.CREATE,
            "qc_result", f"{order['id']}/qc/{row.id}",
            [(name, None, value) for name, value in (
                ("test", row.test), ("result", row.result), ("specification", row.specification),
                ("passed", True), ("tested_at", now.isoformat()))],
        )  # fmt: skip
        session.add(SlotUsageRow(kind="qc", resource="leipzig", day=now.date(), booked=1))
    strict = report(api)
    assert f"QC result {row.id}: recorded_by is 'usr_old' in the qc_results table but not in " \
           "its audit trail" in "\n".join(strict.problems), strict  # fmt: skip

    head = one(api, select(AuditHeadRow.sequence)).sequence
    sql(api, "UPDATE trail_coverage SET since_sequence = :head", head=head)
    legacy = report(api)
    assert legacy.problems == (), legacy.problems
    assert legacy.outcome is Outcome.INCOMPLETE
    notices = "\n".join(legacy.notices)
    assert "qc_results: columns written before the audit trail covered them" in notices
    assert "recorded_by (1)" in notices and "slot_usage: 1 row(s)" in notices, notices


def _rechain(api: Any, edit: Any) -> None:
    """What an attacker with write access and no key can do: edit entries, recompute the
    (unkeyed) hash chain after them and move the head."""
    with make_session_factory(api.ctx.engine)() as session, session.begin():
        previous = GENESIS_HASH
        for entry in AuditRepository().entries(session):
            changed = dataclasses.replace(edit(entry), previous_hash=previous)
            changed = dataclasses.replace(changed, hash=changed.computed_hash())
            previous = changed.hash
            session.execute(
                update(AuditEntryRow)
                .where(AuditEntryRow.sequence == entry.sequence)
                .values(changes=changed.as_dict()["changes"], previous_hash=changed.previous_hash,
                        hash=changed.hash)
            )  # fmt: skip
            session.execute(update(AuditHeadRow).values(hash=changed.hash))


def test_a_checkpoint_kept_apart_catches_a_rewritten_trail(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain is not keyed: rewritten consistently, only a head kept apart shows it."""
    monkeypatch.setenv("CARTNET_SIGNING_KEY", api.ctx.settings.signing_key)
    order = api.enroll()
    api.book_first(order["id"])
    url = api.ctx.engine.url.render_as_string(hide_password=False)
    head = runner.invoke(app, ["audit", "head", "--db", url])
    assert head.exit_code == 0, head.output
    kept = head.stdout.strip()
    assert _verify(api, "--checkpoint", kept).exit_code == 0

    def cheaper(entry: AuditEntry) -> AuditEntry:  # the order was made for another product
        changes = tuple(
            FieldChange(c.field, c.old, "axicabtagene" if c.field == "product" else c.new)
            for c in entry.changes
        )
        return dataclasses.replace(entry, changes=changes)

    sql(api, "UPDATE orders SET product = 'axicabtagene' WHERE id = :id", id=order["id"])
    _rechain(api, cheaper)
    assert _verify(api).exit_code == 0, "without a checkpoint the rewrite is invisible"
    caught = _verify(api, "--checkpoint", kept)
    assert caught.exit_code == 1, caught.output
    assert f"checkpoint {kept.split(':')[0]}: its hash differs" in caught.output
    refused = _verify(api, "--checkpoint", "12:abc")
    assert refused.exit_code == 1 and "64 lower-case hex" in refused.output
