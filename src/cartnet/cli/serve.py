"""``cartnet serve``: run the orchestration service.

Settings come from options, then ``CARTNET_*`` environment variables; the keys that
seal patient identity and e-signatures are made on first start in the user data
directory (mode 0600) unless ``CARTNET_PATIENT_KEY`` / ``CARTNET_SIGNING_KEY`` are set.
The database is migrated on start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cartnet.cli.common import err, fail
from cartnet.cli.db import (
    DB_OPTION,
    announce_new,
    database_exists,
    existing_database,
    redacted,
    valid_database_url,
)
from cartnet.network import NetworkError, NetworkFileError
from cartnet.service.context import KeyMismatchError, ServiceContext
from cartnet.service.settings import ConfigFileError, ServiceSettings
from cartnet.store.database import DatabaseError, data_dir, database_url


class LogLevel(StrEnum):
    """uvicorn's log levels."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


NETWORK_OPTION = typer.Option(
    None, "--network", help="Network the service runs (name or file); default kymriah-2020."
)
CONFIG_OPTION = typer.Option(
    None,
    "--config",
    envvar="CARTNET_CONFIG",
    help="Service configuration file (YAML): FIN, signature rules, product and tissue "
    "establishment codes, limits; see docs/reference/service-api.md.",
)
SCENARIO_OPTION = typer.Option(
    None, "--scenario", help="Scenario of the network to apply; default none."
)


@contextmanager
def service(
    db: str | None,
    network: str | None = None,
    scenario: str | None = None,
    config: Path | None = None,
    create: bool = False,
) -> Iterator[ServiceContext]:
    """The service context for a command, with clean errors for bad settings.

    Only with ``create`` (``cartnet serve``) may a new SQLite database be made.
    """
    if create:
        valid_database_url(db)
    else:
        existing_database(db)
    try:
        settings = ServiceSettings.from_env(
            key_dir=data_dir(),
            config=config,
            database_url=db,
            network=network,
            scenario=scenario,
        )
    except ConfigFileError as e:
        fail(
            f"--config {config}: the service configuration has {len(e.problems)} problem(s)",
            [str(p) for p in e.problems],
        )
    except ValidationError as e:
        fail(
            "the service settings are not valid",
            [f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()],
        )
    existed = database_exists(database_url(settings.database_url))
    try:
        ctx = ServiceContext.open(settings)
    except KeyError as e:
        fail(f"--scenario: {e.args[0]}")
    except NetworkFileError as e:
        fail(
            f"--network {settings.network}: not a usable network ({len(e.problems)} problem(s))",
            [str(p) for p in e.problems],
        )
    except NetworkError as e:
        fail(f"--scenario {settings.scenario}: does not apply: {e}")
    except (DatabaseError, KeyMismatchError) as e:
        fail(str(e))
    except SQLAlchemyError as e:
        fail(
            f"cannot open the database {redacted(database_url(settings.database_url))}: "
            f"{e.__class__.__name__}: {e.args[0]}"
        )
    announce_new(database_url(settings.database_url), existed)
    try:
        yield ctx
    finally:
        ctx.close()


def serve(
    db: str | None = DB_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    network: str | None = NETWORK_OPTION,
    scenario: str | None = SCENARIO_OPTION,
    config: Path | None = CONFIG_OPTION,
    workers: int = typer.Option(
        1, min=1, max=64, help="Server processes (one per core uses every core)."
    ),
    log_level: LogLevel = typer.Option(
        LogLevel.info, case_sensitive=False, help="How much the server logs."
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Serve a new demo database (a temporary folder unless --db names an empty "
        "one) filled with a few weeks of kymriah-2020 orders; prints the demo logins.",
    ),
    demo_seed: int = typer.Option(2020, "--demo-seed", help="Seed of the demo's orders."),
    tls_cert: Path | None = typer.Option(
        None,
        "--tls-cert",
        exists=True,
        dir_okay=False,
        help="Serve HTTPS with this certificate (PEM, with its chain); needs --tls-key. "
        "Without it, put a TLS-terminating reverse proxy in front.",
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", exists=True, dir_okay=False, help="Private key of --tls-cert (PEM)."
    ),
) -> None:
    """Run the orchestration service (REST API under /api/v1, docs at /docs)."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together: give both or neither")
    server_options = uvicorn_options(tls_cert, tls_key)

    from cartnet.api import create_app
    from cartnet.api.server import environment_for

    if demo:
        from cartnet.cli.demo import demo_database

        db, network, scenario = demo_database(db, network, scenario)
    with service(db, network, scenario, config, create=True) as ctx:
        if demo:
            from cartnet.cli.demo import fill_and_print

            fill_and_print(ctx, demo_seed, host, port)
        url = redacted(database_url(ctx.settings.database_url))
        err.print(
            f"cartnet serve: database {url}, network {ctx.network.name}"
            f" ({ctx.settings.scenario or 'no scenario'}), keys in {data_dir()}"
            f", {workers} worker(s)",
            highlight=False,
            soft_wrap=True,
        )
        if workers == 1:
            uvicorn.run(
                create_app(ctx), host=host, port=port, log_level=log_level.value, **server_options
            )
            return
        os.environ.update(environment_for(ctx.settings, None if config is None else str(config)))
    uvicorn.run(
        "cartnet.api.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.value,
        **server_options,
    )


def uvicorn_options(tls_cert: Path | None, tls_key: Path | None) -> dict[str, Any]:
    """What every uvicorn start gets: no ``server`` banner, and TLS when a cert is given.

    The banner tells an attacker which server and version to look up; nobody else
    needs it. A wrong certificate or key stops the start with uvicorn's own message.
    """
    options: dict[str, Any] = {"server_header": False}
    if tls_cert is not None and tls_key is not None:
        options.update(ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key))
    return options
