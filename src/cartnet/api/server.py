"""The application as uvicorn worker processes build it: from ``CARTNET_*`` variables.

``cartnet serve --workers N`` resolves and checks the settings once, migrates the
database, puts the settings into the environment and lets uvicorn start N processes,
each of which calls :func:`app_from_environment`. Python runs one thread at a time per
process; several processes use several cores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from fastapi import FastAPI

from cartnet.api.app import create_app
from cartnet.service.context import ServiceContext
from cartnet.service.settings import PREFIX, ServiceSettings
from cartnet.store.database import data_dir


def environment_for(settings: ServiceSettings, config: str | None) -> dict[str, str]:
    """The variables that give a worker exactly ``settings`` (with the config file)."""
    values = {
        "DATABASE_URL": settings.database_url,
        "NETWORK": settings.network,
        "SCENARIO": settings.scenario,
        "PATIENT_KEY": settings.patient_key,
        "SIGNING_KEY": settings.signing_key,
        "CONFIG": config,
    }
    return {PREFIX + name: value for name, value in values.items() if value is not None}


def app_from_environment(environ: Mapping[str, str] | None = None) -> FastAPI:
    """A worker's application; the parent has migrated the database already."""
    settings = ServiceSettings.from_env(
        os.environ if environ is None else environ, key_dir=data_dir()
    )
    return create_app(ServiceContext.open(settings, migrate=False))
