"""``cartnet serve --demo``: a new database filled with demo orders, and its logins.

The demo never touches a database that holds data: without ``--db`` it makes a SQLite
file in a new temporary folder (``$CARTNET_DATABASE_URL`` is ignored, it may name a
real database), and a ``--db`` that holds anything but empty cartnet tables is refused.
The filling itself is :func:`cartnet.service.demo.fill_demo`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from cartnet.cli.common import err, fail
from cartnet.cli.db import redacted
from cartnet.ledger.lifecycle import OrderState
from cartnet.service.context import ServiceContext
from cartnet.service.demo import DemoError, DemoLogins, fill_demo, require_empty_database
from cartnet.store.database import DatabaseError

DEMO_NETWORK = "kymriah-2020"


def demo_database(
    db: str | None, network: str | None, scenario: str | None
) -> tuple[str, str, None]:
    """The database URL, network and scenario to serve the demo with; refuse others."""
    if network not in (None, DEMO_NETWORK):
        fail(f"--demo runs on the {DEMO_NETWORK} network; leave out --network")
    if scenario is not None:
        fail("--demo runs on kymriah-2020 without a scenario; leave out --scenario")
    if db is None:
        folder = Path(tempfile.mkdtemp(prefix="cartnet-demo-"))
        return f"sqlite+pysqlite:///{folder / 'cartnet-demo.db'}", DEMO_NETWORK, None
    try:
        require_empty_database(db)
    except DemoError as e:
        fail(f"{redacted(db)}: {e}")
    except DatabaseError as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(f"cannot open the database {redacted(db)}: {e.__class__.__name__}: {e.args[0]}")
    return db, DEMO_NETWORK, None


def fill_and_print(ctx: ServiceContext, seed: int, host: str, port: int) -> DemoLogins:
    """Fill the demo (progress on stderr), then print the logins and addresses on stdout."""
    with Progress(
        TextColumn("demo data: {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("accounts", total=100)

        def progress(fraction: float, what: str) -> None:
            bar.update(task, completed=100 * fraction, description=what)

        try:
            logins = fill_demo(ctx, seed, progress=progress)
        except DemoError as e:
            fail(str(e))
    sys.stdout.write(render_logins(logins, ctx, seed, host, port))
    sys.stdout.flush()
    return logins


def render_logins(logins: DemoLogins, ctx: ServiceContext, seed: int, host: str, port: int) -> str:
    """The text printed once before the server starts: orders, logins, addresses."""
    total = sum(logins.states.values())
    states = ", ".join(
        f"{logins.states[s.value]} {s.value}" for s in OrderState if logins.states.get(s.value)
    )
    header = ("role", "tenant", "username", "password", "printed name")
    rows = [
        (x.role.value, x.tenant or "-", x.username, x.password, x.printed_name)
        for x in logins.logins
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    address = f"[{host}]" if ":" in host else host
    text = [
        f"cartnet demo: {total} orders of {ctx.network.name} (seed {seed}): {states}",
        f"database: {redacted(ctx.settings.database_url or '')}",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
        "",
        "The passwords are random for this run and shown only here.",
        f"portal:   http://{address}:{port}/",
        f"API docs: http://{address}:{port}/docs",
        "",
    ]
    return "\n".join(text)
