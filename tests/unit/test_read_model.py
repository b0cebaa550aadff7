"""One read model: SQL that reads run databases is written only in pytomo/readers (and the storage writer)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pytomo"
READERS = ("readers", "storage")
OTHER_DATABASES = {  # modules whose SQL is against a database that is not a run database: which
    "collector/store.py": "the collector's own index.db",
    "dataset/analyses.py": "DuckDB over the Parquet dataset",
}
SQL = re.compile(r"(?s)\b(SELECT\b.+\bFROM\b|PRAGMA\s+\w|sqlite_master)")  # reading; the DDL figures.py declares writes


def _texts(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal of a module (f-strings by their literal parts), docstrings left out."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(v.value for v in node.values
                                             if isinstance(v, ast.Constant) and isinstance(v.value, str))))
    return out


def test_sql_only_in_readers() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in READERS or rel in OTHER_DATABASES or "node_modules" in rel:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{rel}:{line}: {text[:60]!r}" for line, text in _texts(tree) if SQL.search(text)]
        found += [f"{rel}:{n.lineno}: sqlite3.connect" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and n.attr == "connect"
                  and isinstance(n.value, ast.Name) and n.value.id == "sqlite3"]
    assert not found, "SQL outside pytomo/readers and pytomo/storage:\n" + "\n".join(found)


def test_the_check_sees_sql() -> None:
    """The pattern finds the SQL it is meant to find, and not prose."""
    assert SQL.search("SELECT status FROM run ORDER BY id")
    assert SQL.search('PRAGMA table_info(run)')
    assert not SQL.search("select the videos from the list")  # prose in lower case


def test_the_2015_view_reads_the_figures_declarations() -> None:
    """Every 2015 column a figure declares is a column of the view, and every column of the view that is not a
    fact of the hop or address comes from the figure declaring it."""
    from pytomo.figures import FIGURES
    from pytomo.storage.schema import COLUMNS_2015, PER_ADDRESS, view_columns

    declared = {f.legacy: f for f in FIGURES if isinstance(f.legacy, str)}
    assert set(declared) <= set(COLUMNS_2015)
    assert set(COLUMNS_2015) == set(declared) | set(PER_ADDRESS)
    lines = dict(reversed(line.strip().rsplit(" AS ", 1)) for line in view_columns().split(",\n"))
    for column, f in declared.items():
        if column not in PER_ADDRESS:
            assert lines[column].startswith(("d.", "v.")) and lines[column].split()[0][2:] == f.name, column


def test_records_are_frozen_but_the_accumulators_the_docs_name() -> None:
    """pytomo.results says its records are frozen except FILLED_WHILE_MEASURED: the code agrees."""
    import dataclasses
    import inspect

    import pytomo.results as results

    records = {c for _n, c in inspect.getmembers(results, inspect.isclass) if dataclasses.is_dataclass(c)}
    mutable = {c for c in records if not c.__dataclass_params__.frozen}  # type: ignore[attr-defined]
    assert mutable == set(results.FILLED_WHILE_MEASURED)
    for c in mutable:
        assert "handed to the sinks" in " ".join((c.__doc__ or "").split()), c.__name__
