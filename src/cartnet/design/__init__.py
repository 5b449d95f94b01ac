"""Network design: which manufacturing sites to open or expand, at which size.

``DesignInput`` (model) describes the problem, ``solve_design`` (solve) chooses
sites, sizes and the daily allocation with a MILP solved by HiGHS, ``ishipment``
and ``kymriah`` build reference instances, ``twin_check`` runs a chosen design
through the digital twin and flags where it contradicts the model, and
``service_level`` meets twin targets (p90 time to treatment, losses) by capping
site utilization in a solve-and-simulate loop.
"""

from cartnet.design.model import (
    DesignFileError,
    DesignInput,
    DesignProblem,
    check_design,
    load_design,
    parse_design,
)
from cartnet.design.solve import DesignResult, SiteChoice, routes, solve_design

__all__ = [
    "DesignFileError",
    "DesignInput",
    "DesignProblem",
    "DesignResult",
    "SiteChoice",
    "check_design",
    "load_design",
    "parse_design",
    "routes",
    "solve_design",
]
