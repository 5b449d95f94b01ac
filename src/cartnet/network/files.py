"""Network files: YAML read with a safe loader, validated by the network model.

Every error names the file, the line, the path to the field
(``sites[3].approvals[0].regulator``) and what is wrong, and all errors are
reported at once so a planner fixes a file in one pass. Unknown keys,
duplicate keys, unresolved references and duplicate ids are all errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cartnet.fielderrors import field_message, field_path
from cartnet.network.model import Network, NetworkError

_DISCRIMINATORS = ("dist", "op")


@dataclass(frozen=True)
class FileProblem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class NetworkFileError(Exception):
    """A network file that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[FileProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


_FastSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (about 3× faster on large networks)."""


class _UniqueKeyLoader(_FastSafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader that refuses a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def load_network(path: str | Path) -> Network:
    """Read and validate a network file; raise ``NetworkFileError`` listing every problem."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetworkFileError([FileProblem(name, None, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NetworkFileError([FileProblem(name, None, "", f"cannot read: {e}")]) from None
    return parse_network(text, name)


def parse_network(text: str, name: str = "<network>") -> Network:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise NetworkFileError(
            [FileProblem(name, line, "", f"not valid YAML: {problem}")]
        ) from None
    except ValueError as e:  # an impossible date such as 2020-13-01, built by the loader
        raise NetworkFileError([FileProblem(name, None, "", f"bad value: {e}")]) from None
    if not isinstance(data, dict):
        raise NetworkFileError(
            [FileProblem(name, 1, "", "a network file is a mapping with name, sites, ...")]
        )
    try:
        return Network.model_validate(data)
    except (ValidationError, NetworkError):
        pass
    # only a broken file pays for the node tree that gives line numbers
    root = yaml.compose(text, Loader=_FastSafeLoader)
    try:
        return Network.model_validate(data)
    except ValidationError as e:
        problems = [_from_pydantic(name, root, data, err) for err in e.errors()]
    except NetworkError as e:
        problems = [FileProblem(name, _line(root, p.path), p.path, p.message) for p in e.problems]
    raise NetworkFileError(problems)


def _from_pydantic(name: str, root: yaml.Node | None, data: Any, err: Any) -> FileProblem:
    path = field_path(_clean_loc(data, err["loc"]))
    return FileProblem(name, _line(root, path), path, field_message(err))


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


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indices)
    return parts


def _line(root: yaml.Node | None, path: str) -> int | None:
    """Line (1-based) of the deepest node of ``path`` found in the YAML document."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in _split(path):
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if nxt is None:
                nxt = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            nxt = node.value[part] if 0 <= part < len(node.value) else None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line
