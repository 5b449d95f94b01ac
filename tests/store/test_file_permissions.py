"""The SQLite database and the folder it lives in are the owner's only (issue 13, no. 12).

Tested with a permissive umask (022), the usual default that made them world-readable.
PostgreSQL keeps its files itself, so this is about SQLite alone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cartnet.service.context import ServiceContext
from cartnet.service.settings import ServiceSettings
from cartnet.store import make_engine, upgrade
from cartnet.store.database import data_dir, default_database_url


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_folder_are_the_owners_only(
    tmp_path: Path, umask_022: None
) -> None:
    folder = tmp_path / "new" / "cartnet"
    database = folder / "cartnet.db"
    engine = make_engine(f"sqlite+pysqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        assert mode(folder) == 0o700
        assert mode(database) == 0o600
        wal = database.with_name(database.name + "-wal")
        assert wal.exists(), "WAL mode keeps a -wal file while connections are open"
        assert mode(wal) == 0o600
    finally:
        engine.dispose()


def test_an_existing_folder_and_file_keep_their_modes(tmp_path: Path, umask_022: None) -> None:
    """Only what cartnet makes is made private: a folder the user chose is theirs."""
    database = tmp_path / "mine.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    folder_mode = mode(tmp_path)
    upgrade(f"sqlite+pysqlite:///{database}")
    assert mode(database) == 0o640
    assert mode(tmp_path) == folder_mode


def test_the_default_data_directory_is_the_owners_only(
    tmp_path: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First start with nothing configured: keys and database in a 0700 folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CARTNET_DATABASE_URL", raising=False)
    for name in ("CARTNET_PATIENT_KEY", "CARTNET_SIGNING_KEY", "CARTNET_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    settings = ServiceSettings.from_env(key_dir=data_dir(), database_url=default_database_url())
    ctx = ServiceContext.open(settings)
    ctx.close()
    assert mode(data_dir()) == 0o700
    assert mode(data_dir() / "cartnet.db") == 0o600
    assert mode(data_dir() / "patient-key.txt") == 0o600
