"""``tables_of`` reads a run's tables as Arrow columns through Apache Arrow's ADBC SQLite driver when the values fit
their columns, and value by value otherwise: both ways give the same tables, dirty values cleaned alike."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

import pytomo.readers.tables as tables
from tests.unit.test_dataset import make_db

pytest.importorskip("adbc_driver_sqlite")


def _python_way(db: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, pa.Table]:
    with monkeypatch.context() as m:
        m.setattr(tables._Columnar, "table", lambda self, sql, schema: None)
        return tables.tables_of(db)


def _columnar_way(db: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, pa.Table], list[str]]:
    """tables_of, and the queries the driver answered."""
    answered: list[str] = []
    original = tables._Columnar.table

    def table(self: tables._Columnar, sql: str, schema: pa.Schema) -> pa.Table | None:
        got = original(self, sql, schema)
        if got is not None:
            answered.append(sql)
        return got

    with monkeypatch.context() as m:
        m.setattr(tables._Columnar, "table", table)
        return tables.tables_of(db), answered


def _many_samples(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO throughput_samples VALUES (1, ?, ?, ?)",
                     [(i + 1, 0.1 * (i + 1), 1000 + i) for i in range(5000)])
    conn.commit()
    conn.close()


def test_both_ways_give_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = make_db(tmp_path / "a.db")
    _many_samples(db)
    fast, answered = _columnar_way(db, monkeypatch)
    assert any("throughput_samples" in sql for sql in answered)  # the driver read the large table
    slow = _python_way(db, monkeypatch)
    assert fast.keys() == slow.keys()
    for name in fast:
        assert fast[name].equals(slow[name], check_metadata=True), name
    assert fast["throughput_samples"].num_rows == 5002


def test_values_that_do_not_fit_their_column_go_the_python_way(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's dynamic typing lets text and fractions into INTEGER columns: the table is read value by value, the
    values that cannot be the column's type NULL, as before."""
    db = make_db(tmp_path / "a.db")
    _many_samples(db)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO throughput_samples VALUES (1, 'x', 0.5, 2.5)")
    conn.execute("INSERT INTO throughput_samples VALUES (1, 9999, 'late', X'FF')")
    conn.commit()
    conn.close()
    fast, answered = _columnar_way(db, monkeypatch)
    assert not any("throughput_samples" in sql for sql in answered)
    slow = _python_way(db, monkeypatch)
    assert fast["throughput_samples"].equals(slow["throughput_samples"], check_metadata=True)
    last = fast["throughput_samples"].slice(5002).to_pylist()
    assert [(r["bin_index"], r["t_start_s"], r["bytes"]) for r in last] == [(None, 0.5, None), (9999, None, None)]
