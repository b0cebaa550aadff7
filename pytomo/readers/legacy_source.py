"""A 2015-layout run database or a 2013-style '|' dump read as checked rows of the 2015 columns, one at a time."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytomo.errors import StorageError, UsageError
from pytomo.readers.facts import sha256_of
from pytomo.readers.tables import open_run_database
from pytomo.storage.schema import COLUMNS_2015 as VIEW_COLUMNS

COLUMNS = VIEW_COLUMNS[:-1]
"""The 29 columns of the 2015 table (inventory section 7.2), in order: every row read is a tuple of these."""
COLUMNS_2013 = tuple(c for c in COLUMNS if c not in ("CacheServerDelay", "ResolveTime", "ASNumber",
                                                      "TimeTogetFirstByte", "StatusCode"))
"""The 24 columns of the 2013 layout (the dumps, and databases of before 2014)."""
INTEGERS = frozenset({"ASNumber", "DownloadBytes", "DownloadInterruptions", "StatusCode"})
TEXTS = frozenset({"Service", "Url", "CacheUrl", "IP", "Resolver", "VideoType", "RedirectUrl"})
TABLE = re.compile(r"pytomo_crawl_\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}")
ID_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
MAGIC = b"SQLite format 3\x00"
MAX_ROWS = 1_000_000
MAX_LINE_BYTES = 64 * 1024
MAX_TEXT = 8192
Rows = Generator[tuple[object, ...], None, None]


@dataclass(frozen=True)
class Source:
    """A file to import: its path, name, SHA-256, layout (``2015 database``, ``2013 database``, ``2013 dump``,
    ``2015 dump``), the columns it has and how many rows."""

    path: Path
    sha256: str
    layout: str
    columns: tuple[str, ...]
    rows: int

    @property
    def name(self) -> str:
        """The file's name (no folder: the run row keeps only that)."""
        return self.path.name

    def missing(self) -> tuple[str, ...]:
        """The 2015 columns this layout did not have (NULL in every row)."""
        return tuple(c for c in COLUMNS if c not in self.columns)


def _value(column: str, raw: object, where: str) -> object:
    """One cell made a value of its 2015 type (text, integer, real, the ID's text); UsageError naming it if not."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bytes):
        raise UsageError(f"{where}: {column} holds bytes, not a value of the 2015 table")
    if column == "ID":
        if not isinstance(raw, str) or not ID_TEXT.fullmatch(raw):
            raise UsageError(f"{where}: ID {str(raw)[:40]!r} is not a time (YYYY-MM-DD HH:MM:SS[.ffffff])")
        return raw.replace("T", " ")
    if column in TEXTS:
        text = str(raw)
        if len(text) > MAX_TEXT:
            raise UsageError(f"{where}: {column} is {len(text)} characters long, more than {MAX_TEXT}")
        return text
    try:
        number = raw if isinstance(raw, int | float) else float(str(raw))
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {column} {str(raw)[:40]!r} is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise UsageError(f"{where}: {column} {raw!r} is not a finite number")
    if column in INTEGERS:
        if isinstance(number, float) and not number.is_integer():
            raise UsageError(f"{where}: {column} {raw!r} is not a whole number")
        number = int(number)
        if not -(2**63) <= number < 2**63:
            raise UsageError(f"{where}: {column} {raw!r} does not fit a 64-bit integer")
        return number
    return float(number)


def _row(columns: tuple[str, ...], cells: Sequence[object], where: str) -> tuple[object, ...]:
    """The 29 values of one source row (NULL for the columns its layout lacks)."""
    by_name = dict(zip(columns, cells, strict=True))
    values = tuple(_value(c, by_name.get(c), where) for c in COLUMNS)
    if values[0] is None:
        raise UsageError(f"{where}: no ID (the time of the row)")
    if values[2] is None:
        raise UsageError(f"{where}: no Url (the video's page)")
    return values


# ------------------------------------------------------------------------------------------- 2015-layout database


def _crawl_table(conn: sqlite3.Connection, path: Path) -> tuple[str, tuple[str, ...]]:
    objects = conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view', 'trigger')"
                           ).fetchall()
    tables = [name for kind, name in objects if kind == "table" and TABLE.fullmatch(name)]
    if any(kind != "table" for kind, _ in objects) or len(tables) != 1:
        if {"run", "videos"} <= {name for _, name in objects}:
            raise UsageError(f"{path.name} is already a run database of ours: export or upload it as it is")
        raise UsageError(f"{path.name}: not a 2015 Pytomo database (it must hold one table pytomo_crawl_<time> "
                         f"and nothing else; found {', '.join(sorted(n for _, n in objects))[:200] or 'nothing'})")
    table = tables[0]
    info = conn.execute(f'PRAGMA table_xinfo("{table}")').fetchall()
    names = tuple(row[1] for row in info)
    if any(row[6] for row in info) or names not in (COLUMNS, COLUMNS_2013):
        raise UsageError(f"{path.name}: table {table} has the columns {', '.join(names)[:300]}, not the 29 of the "
                         f"2015 layout nor the 24 of 2013")
    return table, names


def _database_rows(path: Path) -> tuple[int, tuple[str, ...], Rows]:
    try:
        conn = open_run_database(path)
    except StorageError as exc:  # an SQLite header, but not a database SQLite can read
        raise UsageError(f"{path.name}: {exc}") from None
    try:
        table, names = _crawl_table(conn, path)
        count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        if not 0 < count <= MAX_ROWS:
            raise UsageError(f"{path.name}: its table has {'no' if not count else f'more than {MAX_ROWS}'} rows")
    except sqlite3.Error as exc:
        conn.close()
        raise UsageError(f"{path.name}: cannot be read as a 2015 database: {exc}") from None
    except UsageError:
        conn.close()
        raise

    def rows() -> Rows:
        try:
            cursor = conn.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid')
            for cells in cursor:
                yield _row(names, cells[1:], f"{path.name} row {cells[0]}")
        except sqlite3.Error as exc:
            raise UsageError(f"{path.name}: cannot be read as a 2015 database: {exc}") from None
        finally:
            conn.close()
    return count, names, rows()


# ------------------------------------------------------------------------------------------------- 2013-style dump


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The non-empty lines of a dump with their numbers, each at most MAX_LINE_BYTES, UTF-8."""
    with open(path, "rb") as fh:
        number = 0
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES:
                raise UsageError(f"{path.name} line {number}: longer than {MAX_LINE_BYTES} bytes")
            try:
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise UsageError(f"{path.name} line {number}: not UTF-8 text") from None
            if text.strip():
                yield number, text


def _dump_rows(path: Path) -> tuple[int, tuple[str, ...], Rows]:
    count = 0
    width = 0
    for number, text in _lines(path):  # a first pass: the layout, and the size before anything is written
        count += 1
        if count > MAX_ROWS:
            raise UsageError(f"{path.name}: more than {MAX_ROWS} rows; split it")
        fields = text.count("|") + 1
        width = width or fields
        if fields != width or width not in (len(COLUMNS_2013), len(COLUMNS)):
            raise UsageError(f"{path.name} line {number}: {fields} fields separated by '|', a dump of the 2015 "
                             f"table has {len(COLUMNS_2013)} (2013) or {len(COLUMNS)} (2015)")
    if not count:
        raise UsageError(f"{path.name}: no rows")
    names = COLUMNS_2013 if width == len(COLUMNS_2013) else COLUMNS

    def rows() -> Rows:
        for number, text in _lines(path):
            yield _row(names, text.split("|"), f"{path.name} line {number}")
    return count, names, rows()


def open_source(path: Path) -> tuple[Source, Rows]:
    """The source's facts and its rows (tuples in :data:`COLUMNS` order, in the order they were written), read
    lazily; UsageError with one line when the file is not a 2015 database or a dump of one."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no file at {path}")
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC))
    if head == MAGIC:
        count, names, rows = _database_rows(path)
        layout = "2015 database" if names == COLUMNS else "2013 database"
    else:
        count, names, rows = _dump_rows(path)
        layout = "2013 dump" if names == COLUMNS_2013 else "2015 dump"
    return Source(path, sha256_of(path), layout, names, count), rows
