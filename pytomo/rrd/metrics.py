"""The RRD data sources and graph pages, generated from the graphs declared in pytomo/figures.py; a value is shown in
its unit by pytomo.units, the same on the graphs and the pages."""

from __future__ import annotations

from dataclasses import dataclass

from pytomo.figures import Figure, Graph, graph_pages, graphs, shared
from pytomo.units import SI_UNITS, in_unit, si_prefix

__all__ = ["BY_NAME", "GROUPS", "METRICS", "SI_UNITS", "Metric", "in_unit", "si_prefix"]
# SI_UNITS, in_unit and si_prefix live in pytomo.units (below the readers, which show values too); named here for
# the graphs (pytomo/web/graphs.py).


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
