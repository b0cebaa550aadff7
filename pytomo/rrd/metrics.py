"""The RRD data sources and graph pages, generated from the graphs declared in pytomo/figures.py."""

from __future__ import annotations

from dataclasses import dataclass

from pytomo.figures import Figure, Graph, graph_pages, graphs, shared


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


METRICS: tuple[Metric, ...] = tuple(Metric(f, g) for f, g in graphs())

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = graph_pages()
