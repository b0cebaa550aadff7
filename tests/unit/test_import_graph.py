"""The package's import graph: no cycle, and no layer importing a layer above it.

Layers, lowest first (a module may import its own layer and the layers below it):

  records   pytomo (the package), pytomo.results, pytomo.errors, pytomo.version, pytomo.paths, pytomo.zones,
            pytomo.units: what was observed, the error tree, the file places, the time zones and how a value is shown
            in its unit; they import nothing else of ours
  settings  pytomo.settings: the frozen settings of a run
  media     pytomo.media: container indexes, HLS and DASH manifests, and MediaInfo
  engine    pytomo.engine: the measurement stages (HTTP, DNS, RTT, download, player, playout)
  services  pytomo.services: the plugins (page URL -> media descriptor, seeds); they see URLs and settings only
  crawl     pytomo.crawl (the loop, the seeds): rounds of videos, each handed to the run's sinks
  figures   pytomo.figures: every stored figure declared once, how it is written, read back and summarised
  sinks     pytomo.console, pytomo.consent: the console line and the volunteer's consent
  storage   pytomo.storage: the run database's writer and schema
  readers   pytomo.readers: the only code that reads run databases with SQL (every schema, the 2015 tables)
  rrd       pytomo.rrd: the RRD files, written during a crawl or rebuilt from a database
  dataset   pytomo.dataset: the Parquet dataset and its analyses
  upload    pytomo.upload: the volunteer's outbox and uploads
  web       pytomo.web: the pages, the API and /metrics
  collector pytomo.collector: the collector's server, which also serves the history across runs
  run       pytomo.run: one crawl wired together (lab, resolvers, plugin, sinks)
  cli       pytomo.cli, every ``__main__`` and ``*_cli`` module: the commands

Beside them, the lab (pytomo.lab, a test harness, not the product) may import records, settings, media and the lab;
no plugin nor anything of the product imports it except the run and the commands that start it.

Every import counts: at module level, inside functions, and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pytomo"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("records", ("pytomo", "pytomo.results", "pytomo.errors", "pytomo.version", "pytomo.paths", "pytomo.zones",
                 "pytomo.units")),
    ("settings", ("pytomo.settings",)),
    ("media", ("pytomo.media",)),
    ("engine", ("pytomo.engine",)),
    ("services", ("pytomo.services",)),
    ("crawl", ("pytomo.crawl",)),
    ("figures", ("pytomo.figures",)),
    ("sinks", ("pytomo.console", "pytomo.consent")),
    ("storage", ("pytomo.storage",)),
    ("readers", ("pytomo.readers",)),
    ("rrd", ("pytomo.rrd",)),
    ("dataset", ("pytomo.dataset",)),
    ("upload", ("pytomo.upload",)),
    ("web", ("pytomo.web",)),
    ("collector", ("pytomo.collector",)),
    ("run", ("pytomo.run",)),
    ("cli", ("pytomo.cli",)),
)
LAB = "pytomo.lab"
LAB_MAY_IMPORT = ("records", "settings", "media")
LAB_USERS = ("run", "cli")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that ``name`` imports anywhere in its text (functions and TYPE_CHECKING included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports."""
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def layer_of(module: str) -> str:
    """The layer of a module: its longest matching prefix (``pytomo`` alone is the package, not a prefix);
    commands by their name; the lab beside the rest."""
    last = module.rpartition(".")[2]
    if last == "__main__" or last.endswith("_cli"):
        return "cli"
    if module == LAB or module.startswith(LAB + "."):
        return "lab"
    best, best_len = "", -1
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            inside = module == prefix or (prefix != "pytomo" and module.startswith(prefix + "."))
            if inside and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    assert best, f"{module} is in no layer: add it to LAYERS"
    return best


RANK = {layer: i for i, (layer, _) in enumerate(LAYERS)}


def allowed(importer: str, imported: str) -> bool:
    """True when a module of layer ``importer`` may import one of layer ``imported``."""
    if importer == "lab":
        return imported in (*LAB_MAY_IMPORT, "lab")
    if imported == "lab":
        return importer in LAB_USERS
    return RANK[imported] <= RANK[importer]


def test_no_upward_import() -> None:
    wrong = []
    for module, targets in graph().items():
        for target in sorted(targets):
            if not allowed(layer_of(module), layer_of(target)):
                wrong.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_cycle() -> None:
    g = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_the_check_sees_type_checking_and_function_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytomo.storage import sqlite\n"
                   "def f():\n    import pytomo.cli\n", encoding="utf-8")
    known = {"pytomo.storage", "pytomo.storage.sqlite", "pytomo.cli"}
    assert imports("pytomo.results", src, known) == {"pytomo.storage.sqlite", "pytomo.cli"}
    assert not allowed(layer_of("pytomo.results"), layer_of("pytomo.storage.sqlite"))
    assert not allowed(layer_of("pytomo.services.youtube"), layer_of("pytomo.lab.runtime"))
    assert not allowed(layer_of("pytomo.lab.platforms"), layer_of("pytomo.services.youtube"))
    assert allowed(layer_of("pytomo.run"), layer_of("pytomo.lab.runtime"))
