"""The RRD data sources and graph pages, generated from the graphs declared in pytomo/figures.py, and how a value is
shown in its unit (the same on the graphs and the pages)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytomo.figures import Figure, Graph, graph_pages, graphs, shared

NO_VALUE = "–"
SI_UNITS = {"bit/s": "bit/s", "bytes": "B"}  # units shown with SI prefixes (powers of 1000), as they are written
SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
BARE_UNITS = {"ratio", "code"}  # shown as numbers alone


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits in fixed notation, never fewer whole digits (1234 stays 1234)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if decimals and float(text) != 0 and math.floor(math.log10(abs(float(text)))) > math.floor(math.log10(abs(value))):
        text = f"{value:.{decimals - 1}f}"  # rounding went up a decade (9.996 -> 10.0): keep three digits
    return text


def si_prefix(value: float) -> tuple[float, str]:
    """The factor and SI prefix that show ``value`` from 1 to 999 once rounded to three significant digits (999.7 k
    is 1.00 M); below 1 no prefix."""
    for factor, prefix in SI_PREFIXES:
        if abs(float(significant(value / factor))) >= 1:
            return factor, prefix
    return 1.0, ""


def in_unit(value: float | None, unit: str) -> str:
    """A value as every page and graph shows it in its unit: bit/s and bytes with SI prefixes and three significant
    digits ("1.06 Mbit/s", "950 bit/s", "1.34 MB"), a share in % ("14.3 %"), others as numbers with their unit
    ("0.0512 ms", "12.3 s"); a dash for no value."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return NO_VALUE
    if unit in SI_UNITS:
        factor, prefix = si_prefix(value)
        return f"{significant(value / factor)} {prefix}{SI_UNITS[unit]}"
    if unit in BARE_UNITS:
        return significant(value)
    return f"{significant(value)} {unit}"


@dataclass(frozen=True)
class Metric:
    """One data source of the RRD files and its graph: a graph of one declared figure."""

    figure: Figure
    graph: Graph

    @property
    def name(self) -> str:
        """RRD data-source name."""
        return self.graph.ds

    @property
    def label(self) -> str:
        """Title of the graph."""
        return self.graph.title

    @property
    def unit(self) -> str:
        """Vertical axis label."""
        return self.graph.axis

    @property
    def description(self) -> str:
        """The sentence under the graph."""
        return self.graph.description

    @property
    def scale(self) -> float:
        """Multiplies the RRD value on graphs (a share stored as 0..1 is drawn in %)."""
        return self.graph.draw_scale

    @property
    def shared(self) -> bool:
        """True when a database of the 2015 layout has it."""
        return shared(self.figure, self.graph)

    def shown(self, value: float | None) -> str:
        """A drawn value (times ``scale``) in the graph's unit."""
        return in_unit(value, self.unit)


METRICS: tuple[Metric, ...] = tuple(Metric(f, g) for f, g in graphs())

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = graph_pages()
