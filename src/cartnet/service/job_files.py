"""The files a finished comparison is shown with: its figures and standalone report.

Drawn from the job's run document once per machine (matplotlib takes seconds), by the
runner as the job ends, or on the first request if the cache was cleared; the document
in the database stays the record, the files can always be drawn again.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from cartnet.network.model import Network
from cartnet.report.twin_report import write_figures, write_report

CACHE = Path(tempfile.gettempdir()) / "cartnet-job-files"
_drawing = threading.Lock()


def variant_networks(base: Network, document: dict[str, Any]) -> dict[str, Network]:
    """Each variant's network, by label, as the run used it."""
    return {v["label"]: base.with_scenario(v.get("scenario")) for v in document["variants"]}


def comparison_files(job_id: str, document: dict[str, Any], base: Network) -> Path:
    """The folder with ``report.html`` and the figures ``<name>.png`` of a comparison."""
    folder = CACHE / job_id
    report = folder / "report.html"
    with _drawing:
        if not report.exists():
            networks = variant_networks(base, document)
            write_figures(document, networks, folder)
            partial = folder / "report.partial.html"
            write_report(document, networks, partial)
            partial.replace(report)
    return folder
