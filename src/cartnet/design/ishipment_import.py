"""Read the i-SHIPMENT authors' data files (Pyomo ``.dat``) into a design.

The official implementation of Triantafyllou et al. (Sci Rep 2022,
https://github.com/nikitrian/i-SHIPMENT) publishes its instances as Pyomo data
files: sets ``c`` (leukapheresis sites), ``h`` (hospitals, the k-th co-located
with the k-th leukapheresis site), ``j`` (transport modes), ``m`` (candidate
manufacturing sites, one size each) and ``p`` (patients), and parameters

* ``CIM[m]``, ``CVM[m]``: the site's capital and fixed running cost per day,
  charged over the whole horizon when it opens; ``FCAP[m]``: its lines;
* ``TT1[j]``, ``TT3[j]``: transit days out (to the site) and back;
* ``U1[c,m,j]``, ``U3[m,h,j]``: cost of one shipment out and back;
* ``INC[p,c,t]``: patient ``p`` arrives at site ``c`` on day ``t`` (1-based);
* scalars ``TLS`` (apheresis days), ``TMFE``/``TQC`` (manufacturing, QC days),
  ``C_material``/``CQC`` (per therapy), ``ND`` (vein-to-vein cap), ``FMIN``/``FMAX``
  (patients per shipment) and ``TAD`` (administration days, unused by the model).

Facts of the authors' model that are not in the files, used as defaults: a
130-day horizon, at most two open sites, manufacturing and QC 7 days, materials
USD 10,476 and QC USD 9,312 per therapy, an 18-day cap, and, where a file has no
``CVM``, the model's default of USD 5,230 per line and day. Only the ``:=`` list
form of Pyomo data is read (what the authors' files use); anything else is
refused with its line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cartnet.design.model import DesignFileError, DesignInput, check_design
from cartnet.yamlfile import FileProblem, read_text

SOURCE = (
    "Triantafyllou, Bernardi, Lakelin, Shah, Papathanasiou, Sci Rep 12:17365 (2022), "
    "i-SHIPMENT data file format (https://github.com/nikitrian/i-SHIPMENT)"
)
HORIZON_DAYS = 130
"""The model's time set (``RangeSet(130)``)."""
MAX_SITES = 2
"""The model's centralised network: at most two manufacturing sites."""
CVM_PER_LINE_DAY = 5_230.0
"""The model's default ``CVM`` (20,920 for 4 lines, 52,300 for 10, 156,900 for 31)."""

SETS = ("c", "h", "j", "m", "p")
INDEXED = {
    "CIM": ("m",),
    "CVM": ("m",),
    "FCAP": ("m",),
    "TT1": ("j",),
    "TT3": ("j",),
    "U1": ("c", "m", "j"),
    "U3": ("m", "h", "j"),
    "INC": ("p", "c", "t"),
}
SCALARS = {
    "TLS": None,
    "TMFE": 7.0,
    "TQC": 7.0,
    "C_material": 10_476.0,
    "CQC": 9_312.0,
    "ND": 18.0,
    "FMIN": 0.0,
    "FMAX": 1.0,
    "TAD": 0.0,
}
"""Scalar parameters and the model's defaults (None: the file must give it)."""


@dataclass
class DatFile:
    """Sets and parameters of one data file, with the line of every entry."""

    name: str
    sets: dict[str, list[str]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    params: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    """Line of a set or parameter statement (``(name,)``) and of each entry (name, *index)."""


class _Problems:
    def __init__(self, name: str) -> None:
        self.name = name
        self.found: list[FileProblem] = []

    def add(self, line: int | None, path: str, message: str) -> None:
        self.found.append(FileProblem(self.name, line, path, message))

    def raise_any(self) -> None:
        if self.found:
            raise DesignFileError(self.found)


_TOKEN = re.compile(r":=|;|[^\s;]+?(?=:=|;|\s|$)")


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        for token in _TOKEN.findall(raw.split("#", 1)[0]):
            yield number, token


def _statements(text: str, problems: _Problems) -> Iterator[list[tuple[int, str]]]:
    current: list[tuple[int, str]] = []
    for line, token in _tokens(text):
        if token == ";":
            if current:
                yield current
            current = []
        else:
            current.append((line, token))
    if current:
        problems.add(current[0][0], current[0][1], "statement not ended with ';'")


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_dat(text: str, name: str = "<data>") -> DatFile:
    """The sets and parameters of a data file; ``DesignFileError`` with lines if malformed."""
    problems = _Problems(name)
    dat = DatFile(name)
    for stmt in _statements(text, problems):
        line, kind = stmt[0]
        if kind not in ("set", "param") or len(stmt) < 3 or stmt[2][1] != ":=":
            problems.add(line, "", "expected 'set NAME := ...;' or 'param NAME := ...;'")
            continue
        label = stmt[1][1]
        body = stmt[3:]
        if (label,) in dat.lines:
            problems.add(line, label, f"given twice (first on line {dat.lines[(label,)]})")
            continue
        dat.lines[(label,)] = line
        if kind == "set":
            if label not in SETS:
                problems.add(line, label, f"unknown set (the model has {', '.join(SETS)})")
                continue
            members = [t for _, t in body]
            twice = sorted({m for m in members if members.count(m) > 1})
            if twice:
                problems.add(line, label, f"member(s) listed twice: {', '.join(twice)}")
            dat.sets[label] = members
        elif label in SCALARS:
            value = _number(body[0][1]) if len(body) == 1 else None
            if value is None:
                problems.add(line, label, "a scalar parameter takes one number")
            else:
                dat.scalars[label] = value
        elif label in INDEXED:
            _read_indexed(dat, label, body, line, problems)
        else:
            known = ", ".join([*INDEXED, *SCALARS])
            problems.add(line, label, f"unknown parameter (the model has {known})")
    problems.raise_any()
    _check_references(dat, problems)
    problems.raise_any()
    return dat


def _read_indexed(
    dat: DatFile, label: str, body: list[tuple[int, str]], line: int, problems: _Problems
) -> None:
    width = len(INDEXED[label]) + 1
    if len(body) % width:
        problems.add(
            line,
            label,
            f"{len(body)} entries do not make rows of {width} "
            f"({', '.join(INDEXED[label])} and a value)",
        )
        return
    table: dict[tuple[str, ...], float] = {}
    for i in range(0, len(body), width):
        row = body[i : i + width]
        key = tuple(t for _, t in row[:-1])
        where = f"{label}[{','.join(key)}]"
        value = _number(row[-1][1])
        if value is None or value < 0:
            problems.add(row[-1][0], where, f"{row[-1][1]!r} is not a number ≥ 0")
            continue
        if key in table:
            problems.add(
                row[0][0], where, f"given twice (first on line {dat.lines[(label, *key)]})"
            )
            continue
        table[key] = value
        dat.lines[(label, *key)] = row[0][0]
    dat.params[label] = table


def _check_references(dat: DatFile, problems: _Problems) -> None:
    for s in SETS:
        if s not in dat.sets:
            problems.add(None, s, "set missing")
    for label in ("CIM", "FCAP", "TT1", "TT3", "U1", "U3", "INC"):
        if label not in dat.params:
            problems.add(None, label, "parameter missing")
    for label, value in SCALARS.items():
        if value is None and label not in dat.scalars:
            problems.add(None, label, "parameter missing")
    if problems.found:
        return
    members = {s: set(dat.sets[s]) for s in SETS}
    for label, table in dat.params.items():
        for key in table:
            for index, member in zip(INDEXED[label], key, strict=True):
                if index == "t":
                    if not (member.isdigit() and 1 <= int(member) <= HORIZON_DAYS):
                        problems.add(
                            dat.lines[(label, *key)],
                            f"{label}[{','.join(key)}]",
                            f"day {member!r} is not a whole day 1..{HORIZON_DAYS}",
                        )
                elif member not in members[index]:
                    problems.add(
                        dat.lines[(label, *key)],
                        f"{label}[{','.join(key)}]",
                        f"{member!r} is not in set {index}",
                    )


# -- to a design ----------------------------------------------------------------------


def _require(dat: DatFile, label: str, key: tuple[str, ...], problems: _Problems) -> float:
    value = dat.params.get(label, {}).get(key)
    if value is None:
        problems.add(dat.lines.get((label,)), label, f"no value for [{','.join(key)}]")
        return 0.0
    return value


def _whole(dat: DatFile, label: str, value: float, problems: _Problems, low: int = 0) -> int:
    if value != int(value) or value < low:
        problems.add(dat.lines.get((label,)), label, f"{value:g} is not a whole number ≥ {low}")
    return int(value)


def design_data(
    dat: DatFile,
    *,
    horizon_days: int = HORIZON_DAYS,
    max_sites: int | None = MAX_SITES,
    cvm_per_line_day: float = CVM_PER_LINE_DAY,
) -> dict[str, Any]:
    """The design file content (a plain mapping) of a parsed data file."""
    problems = _Problems(dat.name)
    sc = {k: dat.scalars.get(k, 0.0 if v is None else v) for k, v in SCALARS.items()}
    if not sc["FMIN"] <= 1 <= sc["FMAX"]:
        problems.add(dat.lines.get(("FMIN",)), "FMIN", "FMIN ≤ 1 ≤ FMAX: one patient a shipment")
    centers, hospitals = dat.sets["c"], dat.sets["h"]
    if len(centers) != len(hospitals):
        problems.add(
            dat.lines[("h",)], "h", f"{len(hospitals)} hospitals for {len(centers)} sites c"
        )
    modes = []
    for j in dat.sets["j"]:
        out, back = _require(dat, "TT1", (j,), problems), _require(dat, "TT3", (j,), problems)
        if out != back:
            problems.add(
                dat.lines.get(("TT3", j)),
                f"TT3[{j}]",
                f"{back:g} days back but TT1[{j}] is {out:g} out; cartnet modes take one "
                "transit time both ways",
            )
        modes.append(
            {"id": j, "transit_days": _whole(dat, "TT1", out, problems), "cost_per_shipment": 0}
        )
    cvm_note = None
    candidates = []
    for m in dat.sets["m"]:
        lines = _whole(dat, "FCAP", _require(dat, "FCAP", (m,), problems), problems, low=1)
        cvm = dat.params.get("CVM", {}).get((m,))
        if cvm is None:
            cvm = cvm_per_line_day * lines
            cvm_note = f"CVM not in the file: the model's default {cvm_per_line_day:g} per line-day"
        cim = _require(dat, "CIM", (m,), problems)
        size = {
            "lines": lines,
            "fixed_cost_per_day": round(cim + cvm, 6),
            "label": f"{lines} lines",
        }
        candidates.append(
            {
                "id": m,
                "lat": 0.0,
                "lon": 0.0,
                "sizes": [size],
                "assumption": "no location in the data file (lanes carry the prices)",
            }
        )
    horizon = [[0] * horizon_days for _ in centers]
    index = {c: i for i, c in enumerate(centers)}
    for (_, c, t), n in dat.params["INC"].items():
        if int(t) > horizon_days:
            problems.add(
                dat.lines.get(("INC",)), "INC", f"day {t} is beyond the {horizon_days}-day horizon"
            )
            break
        horizon[index[c]][int(t) - 1] += _whole(dat, "INC", n, problems)
    visits = dict.fromkeys(dat.sets["p"], 0.0)
    for (p, _, _), n in dat.params["INC"].items():
        visits[p] += n
    odd = [f"{p} ({n:g})" for p, n in visits.items() if n != 1]
    if odd:
        problems.add(
            dat.lines.get(("INC",)),
            "INC",
            f"every patient arrives once; not so for {', '.join(odd[:5])}"
            + (f" and {len(odd) - 5} more" if len(odd) > 5 else ""),
        )
    lanes = []
    for ci, c in enumerate(centers):
        h = hospitals[ci] if ci < len(hospitals) else c
        for m in dat.sets["m"]:
            for j in dat.sets["j"]:
                lanes.append(
                    {
                        "center": c,
                        "site": m,
                        "mode": j,
                        "cost_out": _require(dat, "U1", (c, m, j), problems),
                        "cost_back": _require(dat, "U3", (m, h, j), problems),
                    }
                )
    problems.raise_any()
    notes = [
        f"{horizon_days}-day horizon"
        + (f", at most {max_sites} sites" if max_sites else ", no limit on sites")
        + " (the authors' model)",
        "patients arriving on day t (1-based) arrive on day t-1 here",
    ]
    if cvm_note:
        notes.append(cvm_note)
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(dat.name).stem).strip("-.") or "ishipment"
    return {
        "name": stem[:64],
        "description": f"imported from the i-SHIPMENT data file {Path(dat.name).name}",
        "source": SOURCE,
        "assumption": "; ".join(notes),
        "horizon_days": horizon_days,
        "v2v_cap_days": _whole(dat, "ND", sc["ND"], problems, low=1),
        "durations": {
            "apheresis_days": _whole(dat, "TLS", sc["TLS"], problems),
            "manufacturing_days": _whole(dat, "TMFE", sc["TMFE"], problems, low=1),
            "qc_days": _whole(dat, "TQC", sc["TQC"], problems),
        },
        "costs": {"materials_per_therapy": sc["C_material"], "qc_per_therapy": sc["CQC"]},
        "modes": modes,
        "lanes": lanes,
        "candidates": candidates,
        "centers": [
            {
                "id": c,
                "name": f"{c} (with hospital {hospitals[i]})" if i < len(hospitals) else c,
                "lat": 0.0,
                "lon": 0.0,
                "arrivals": horizon[i],
            }
            for i, c in enumerate(centers)
        ],
        "limits": {"max_sites": max_sites} if max_sites else {},
    }


def import_ishipment(
    path: str | Path,
    *,
    horizon_days: int = HORIZON_DAYS,
    max_sites: int | None = MAX_SITES,
    cvm_per_line_day: float = CVM_PER_LINE_DAY,
) -> tuple[DesignInput, dict[str, Any]]:
    """The design of an i-SHIPMENT data file and its file content; errors name the line."""
    name = str(path)
    dat = parse_dat(read_text(path, DesignFileError), name)
    data = design_data(
        dat, horizon_days=horizon_days, max_sites=max_sites, cvm_per_line_day=cvm_per_line_day
    )
    try:
        design = DesignInput.model_validate(data)
    except ValueError as e:
        raise DesignFileError([FileProblem(name, None, "", f"not a valid design: {e}")]) from None
    return check_design(design, name), data
