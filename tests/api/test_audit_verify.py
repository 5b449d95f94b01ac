"""``cartnet audit verify`` after real use: clean, then flags rows edited in the database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def signing_key(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's signing key, as an operator running verify would have it."""
    monkeypatch.setenv("CARTNET_SIGNING_KEY", api.ctx.settings.signing_key)


def _verify(url: str) -> Any:
    return runner.invoke(app, ["audit", "verify", "--db", url])


def _sql(api: Any, statement: str) -> None:
    with api.ctx.engine.begin() as connection:
        connection.execute(text(statement))


def test_verify_passes_after_use_and_names_what_was_edited(api: Any) -> None:
    """Booked orders verify; an edited order row and an edited audit entry are named."""
    first = api.enroll()
    api.book_first(first["id"])
    second = api.enroll()
    url = str(api.ctx.engine.url.render_as_string(hide_password=False))
    clean = _verify(url)
    assert clean.exit_code == 0, clean.output
    assert "every record agrees" in clean.stdout

    _sql(api, f"UPDATE orders SET state = 'released' WHERE id = '{first['id']}'")
    edited = _verify(url)
    assert edited.exit_code == 1
    assert f"order {first['id']}: state is 'released'" in edited.output
    assert "'booked' in the audit trail" in edited.output
    assert second["id"] not in edited.output

    _sql(api, f"UPDATE orders SET state = 'booked' WHERE id = '{first['id']}'")
    assert _verify(url).exit_code == 0
    _sql(api, "UPDATE audit_entries SET actor_name = 'Mallory' WHERE sequence = 3")
    tampered = _verify(url)
    assert tampered.exit_code == 1
    assert "sequence 3" in tampered.output or "#3" in tampered.output


def test_verify_names_orders_inserted_or_deleted_outside(api: Any) -> None:
    """A row with no trail, and a trail whose row is gone, are both reported."""
    order = api.enroll()
    url = str(api.ctx.engine.url.render_as_string(hide_password=False))
    _sql(api, "INSERT INTO orders (id, coi, center, market, product, scope, state, pseudonym, "
              "patient_identity, country, earliest_apheresis, created_at, updated_at, version) "
              "SELECT 'ord_forged', 'CHW999926ZZZZZZ', center, market, product, scope, state, "
              "'P-FORGED', patient_identity, country, earliest_apheresis, created_at, "
              f"updated_at, 1 FROM orders WHERE id = '{order['id']}'")  # fmt: skip
    result = _verify(url)
    assert result.exit_code == 1
    assert "order ord_forged: has no audit trail" in result.output


def test_verify_names_custody_qc_and_signature_rows_edited_outside(api: Any) -> None:
    """A custody scan, a QC result and a signature's printed name, each edited in SQL."""
    order = api.enroll()
    oid, coi = order["id"], order["coi"]
    api.book_first(oid)
    collected = api.post("coordinator", f"/orders/{oid}/custody-events", {
        "step": "collection", "scanned": "&/" + coi, "organisation": "DFCI", "place": "bay 2",
        "at": datetime.now(timezone(timedelta(hours=-5))).isoformat(),
        "signatures": api.sign("coordinator"),
    })  # fmt: skip
    assert collected.status_code == 201, collected.text
    url = str(api.ctx.engine.url.render_as_string(hide_password=False))
    assert _verify(url).exit_code == 0

    custody_id = collected.json()["custody"]["id"]
    _sql(api, f"UPDATE custody_events SET place = 'bay 9' WHERE id = {custody_id}")
    _sql(api, "UPDATE signatures SET printed_name = 'Someone Else'")
    result = _verify(url)
    assert result.exit_code == 1
    assert f"custody event {custody_id}: place is 'bay 9'" in result.output
    assert "its seal does not match" in result.output
