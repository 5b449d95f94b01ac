"""The portal's static files, all served from our own origin.

Nothing is loaded from a CDN, a font service or a tile server: the portal must work on
an isolated plant network. htmx is vendored as one file taken from the npm registry
(``npm pack htmx.org@2.0.11``); its version and SHA-256 are recorded here and a test
checks the file against them. Swagger UI and ReDoc for ``/docs`` and ``/redoc`` come
from the ``fastapi-offline`` package's copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import fastapi_offline

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_DOCS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"


@dataclass(frozen=True, slots=True)
class VendoredFile:
    """A third-party file shipped in the package, pinned by version and hash."""

    package: str
    version: str
    filename: str
    sha256: str
    source: str

    @property
    def url(self) -> str:
        return f"/static/{self.filename}"


HTMX = VendoredFile(
    package="htmx.org",
    version="2.0.11",
    filename="htmx-2.0.11.min.js",
    sha256="d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    source="https://registry.npmjs.org/htmx.org/-/htmx.org-2.0.11.tgz (dist/htmx.min.js)",
)
VENDORED = (HTMX,)
