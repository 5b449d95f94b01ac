"""Writing a (generated) network as a network file, notes last so that it reads well."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cartnet.network.model import Network

_NOTES = ("source", "assumption")


def write_network_yaml(network: Network, path: Path) -> None:
    """Write ``network`` as a network file that ``load_network`` reads back equal."""
    data = notes_last(network.model_dump(mode="json", by_alias=True, exclude_none=True))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    Path(path).write_text(text, encoding="utf-8")


def notes_last(data: Any) -> Any:
    """The same data with ``source`` and ``assumption`` last in every mapping (easier to read).

    >>> notes_last({"assumption": "a", "id": "x", "items": [{"source": "s", "n": 1}]})
    {'id': 'x', 'items': [{'n': 1, 'source': 's'}], 'assumption': 'a'}
    """
    if isinstance(data, dict):
        keys = [k for k in data if k not in _NOTES] + [k for k in _NOTES if k in data]
        return {k: notes_last(data[k]) for k in keys}
    if isinstance(data, list):
        return [notes_last(x) for x in data]
    return data
