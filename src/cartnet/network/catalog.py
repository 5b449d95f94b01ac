"""Reference networks packaged with cartnet, found by name or by file path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cartnet.network.files import FileProblem, NetworkFileError, load_network, parse_network
from cartnet.network.model import Network


def packaged_names() -> list[str]:
    """Names of the networks shipped in ``cartnet/data`` (``kymriah-2020``, ...)."""
    data = resources.files("cartnet.data")
    return sorted(p.name.removesuffix(".yaml") for p in data.iterdir() if p.name.endswith(".yaml"))


def open_network(name_or_path: str) -> Network:
    """A packaged network by name, or a network file by path."""
    if name_or_path in packaged_names():
        resource = resources.files("cartnet.data").joinpath(f"{name_or_path}.yaml")
        return parse_network(resource.read_text(encoding="utf-8"), f"{name_or_path}.yaml")
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        return load_network(path)
    known = ", ".join(packaged_names())
    raise NetworkFileError(
        [
            FileProblem(
                name_or_path,
                None,
                "",
                f"neither a packaged network ({known}) nor a network file",
            )
        ]
    )
