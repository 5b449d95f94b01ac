"""Network files: YAML read with a safe loader, validated by the network model.

Every error names the file, the line, the path to the field
(``sites[3].approvals[0].regulator``) and what is wrong, and all errors are
reported at once so a planner fixes a file in one pass. Unknown keys,
duplicate keys, unresolved references and duplicate ids are all errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cartnet.fielderrors import field_message, field_path
from cartnet.network.model import Network, NetworkError
from cartnet.yamlfile import (
    FileProblem,
    InputFileError,
    line_of,
    load_mapping,
    node_tree,
    read_text,
)

__all__ = ["FileProblem", "NetworkFileError", "load_network", "parse_network"]

_DISCRIMINATORS = ("dist", "op")


class NetworkFileError(InputFileError):
    """A network file that cannot be used, with every problem found in it."""


def load_network(path: str | Path) -> Network:
    """Read and validate a network file; raise ``NetworkFileError`` listing every problem."""
    return parse_network(read_text(path, NetworkFileError), str(path))


def parse_network(text: str, name: str = "<network>") -> Network:
    data = load_mapping(text, name, "network file", NetworkFileError)
    try:
        return Network.model_validate(data)
    except (ValidationError, NetworkError):
        pass
    # only a broken file pays for the node tree that gives line numbers
    root = node_tree(text)
    try:
        return Network.model_validate(data)
    except ValidationError as e:
        problems = [_from_pydantic(name, root, data, err) for err in e.errors()]
    except NetworkError as e:
        problems = [FileProblem(name, line_of(root, p.path), p.path, p.message) for p in e.problems]
    raise NetworkFileError(problems)


def _from_pydantic(name: str, root: Any, data: Any, err: Any) -> FileProblem:
    path = field_path(_clean_loc(data, err["loc"]))
    return FileProblem(name, line_of(root, path), path, field_message(err))


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> list[str | int]:
    """Drop the union tags pydantic adds to a location (``manufacturing.lognormal.sd``)."""
    parts: list[str | int] = []
    node = data
    for part in loc:
        if (
            isinstance(part, str)
            and isinstance(node, dict)
            and part not in node
            and any(node.get(d) == part for d in _DISCRIMINATORS)
        ):
            continue
        parts.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return parts
