"""Pieces every offline HTML report shares: escaping, and plotly figures with the
library inlined once per page (no CDN, so a report opens anywhere)."""

from __future__ import annotations

import html
from typing import Any


def esc(x: object) -> str:
    return html.escape(str(x))


class Figures:
    """Plotly figures as HTML fragments; the first one carries plotly.js, inlined."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: Any) -> str:
        import plotly.io as pio

        fragment: str = pio.to_html(
            fig,
            include_plotlyjs=self.count == 0,
            full_html=False,
            default_width="100%",
            config={"displaylogo": False, "responsive": True},
        )
        self.count += 1
        return f'<div class="figure">{fragment}</div>'
