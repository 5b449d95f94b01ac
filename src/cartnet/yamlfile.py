"""Input files in YAML: read safely, and point at the line of a field.

Network files and design files are edited by people, so every problem names the
file, the line and the path to the field. Reading refuses a key written twice
(PyYAML would keep the last) and never builds Python objects from tags; line
numbers are looked up only when a file has problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class FileProblem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InputFileError(Exception):
    """A file that cannot be used, with every problem found in it."""

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


def read_text(path: str | Path, error: type[InputFileError] = InputFileError) -> str:
    """The file's text, or ``error`` saying why it cannot be read."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error([FileProblem(name, None, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise error([FileProblem(name, None, "", f"cannot read: {e}")]) from None


def load_mapping(
    text: str, name: str, what: str, error: type[InputFileError] = InputFileError
) -> dict[str, Any]:
    """Parse YAML text that must be a mapping; ``what`` describes it in the error."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise error([FileProblem(name, line, "", f"not valid YAML: {problem}")]) from None
    except ValueError as e:  # an impossible date such as 2020-13-01, built by the loader
        raise error([FileProblem(name, None, "", f"bad value: {e}")]) from None
    if not isinstance(data, dict):
        raise error([FileProblem(name, 1, "", f"a {what} is a mapping")])
    return data


def node_tree(text: str) -> yaml.Node | None:
    """The YAML node tree, for line numbers (only worth building when there are problems)."""
    return yaml.compose(text, Loader=_FastSafeLoader)


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indices)
    return parts


def line_of(root: yaml.Node | None, path: str) -> int | None:
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
