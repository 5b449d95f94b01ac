"""Shared fixtures: the small example network of the docs and the packaged reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartnet.network import Network, load_network, open_network

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "two-sites.yaml"


@pytest.fixture(scope="session")
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def example() -> Network:
    return load_network(EXAMPLE)


@pytest.fixture(scope="session")
def kymriah() -> Network:
    return open_network("kymriah-2020")
