"""Reference networks packaged with cartnet, found by name or by file path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cartnet.network.files import FileProblem, NetworkFileError, load_network, parse_network
from cartnet.network.model import Network
from cartnet.yamlfile import read_text


def packaged_names() -> list[str]:
    """Names of the networks shipped in ``cartnet/data`` (``kymriah-2020``, ...)."""
    data = resources.files("cartnet.data")
    return sorted(p.name.removesuffix(".yaml") for p in data.iterdir() if p.name.endswith(".yaml"))


def open_network(name_or_path: str) -> Network:
    """A packaged network by name, or a network file by path."""
    if name_or_path in packaged_names():
        name, text = network_source(name_or_path)
        return parse_network(text, name)
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        return load_network(path)
    raise _unknown(name_or_path)


def network_source(name_or_path: str) -> tuple[str, str]:
    """The file name and YAML text of a packaged network or a network file, unchecked."""
    if name_or_path in packaged_names():
        resource = resources.files("cartnet.data").joinpath(f"{name_or_path}.yaml")
        return f"{name_or_path}.yaml", resource.read_text(encoding="utf-8")
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        return str(path), read_text(path, NetworkFileError)
    raise _unknown(name_or_path)


def _unknown(name_or_path: str) -> NetworkFileError:
    known = ", ".join(packaged_names())
    return NetworkFileError(
        [
            FileProblem(
                name_or_path,
                None,
                "",
                f"neither a packaged network ({known}) nor a network file",
            )
        ]
    )
