"""Databases of the 2015 layout (one flat table, inventory section 7.2) for the tests of the readers' 2015 path: made
from the rows of our view, or from a real 2013 dump as read by ``pytomo import``'s reader (the opposite way,
2015 -> our schema, is ``pytomo import`` itself: pytomo/readers/legacy_source.py, pytomo/storage/imported.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

COLUMNS_2015 = (
    ("ID", "TIMESTAMP"), ("Service", "text"), ("Url", "text"), ("CacheUrl", "text"), ("CacheServerDelay", "real"),
    ("IP", "text"), ("Resolver", "text"), ("ResolveTime", "real"), ("ASNumber", "int"), ("PingMin", "real"),
    ("PingAvg", "real"), ("PingMax", "real"), ("DownloadTime", "real"), ("VideoType", "text"),
    ("VideoDuration", "real"), ("VideoLength", "real"), ("EncodingRate", "real"), ("DownloadBytes", "int"),
    ("DownloadInterruptions", "int"), ("InitialData", "real"), ("InitialRate", "real"),
    ("InitialPlaybackBuffer", "real"), ("BufferingDuration", "real"), ("PlaybackDuration", "real"),
    ("BufferDurationAtEnd", "real"), ("TimeTogetFirstByte", "real"), ("MaxInstantThp", "real"),
    ("RedirectUrl", "text"), ("StatusCode", "int"),
)


def make_2015_database(ours: Path, folder: Path) -> Path:
    """Copy every row of ``pytomo_crawl`` into ``pytomo_crawl_<YYYY_MM_DD_HH_MM_SS>`` of a new file, as in 2015."""
    src = sqlite3.connect(f"file:{ours}?mode=ro&immutable=1", uri=True)
    rows = src.execute(f"SELECT {', '.join(c for c, _t in COLUMNS_2015)} FROM pytomo_crawl").fetchall()
    first = src.execute("SELECT started_at FROM run").fetchone()[0]
    src.close()
    stamp = first[:19].replace("-", "_").replace("T", "_").replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"oldhost.lab.{first[:10]}.{first[11:19].replace(':', '_')}.pytomo_database.db"
    conn = sqlite3.connect(path, isolation_level=None)
    table = f"pytomo_crawl_{stamp}"
    conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in COLUMNS_2015)})")
    conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in COLUMNS_2015)})", rows)
    conn.close()
    return path


REAL_2013 = Path(__file__).resolve().parents[2].parent / "shared" / "pytomo2013"  # ../shared beside the clone
# The 24 columns of the 2013 dumps (the 2015 table without CacheServerDelay, ResolveTime, ASNumber, StatusCode and
# TimeTogetFirstByte).
COLUMNS_2013 = (
    ("ID", "TIMESTAMP"), ("Service", "text"), ("Url", "text"), ("CacheUrl", "text"), ("IP", "text"),
    ("Resolver", "text"), ("PingMin", "real"), ("PingAvg", "real"), ("PingMax", "real"), ("DownloadTime", "real"),
    ("VideoType", "text"), ("VideoDuration", "real"), ("VideoLength", "real"), ("EncodingRate", "real"),
    ("DownloadBytes", "int"), ("DownloadInterruptions", "int"), ("InitialData", "real"), ("InitialRate", "real"),
    ("InitialPlaybackBuffer", "real"), ("BufferingDuration", "real"), ("PlaybackDuration", "real"),
    ("BufferDurationAtEnd", "real"), ("MaxInstantThp", "real"), ("RedirectUrl", "text"),
)

def real_2013_database(dump: Path, folder: Path) -> Path:
    """A database of the 2015 layout holding the rows of one dump, as the volunteer's machine had it (the dump read
    and checked by ``pytomo import``'s reader)."""
    from pytomo.readers.legacy_source import COLUMNS, open_source

    assert tuple(c for c, _t in COLUMNS_2013) == legacy_source_2013()
    source, read = open_source(dump)
    assert source.layout == "2013 dump", source
    keep = [COLUMNS.index(c) for c, _t in COLUMNS_2013]
    rows = [[row[i] for i in keep] for row in read]
    first = min(r[0] for r in rows)
    site = dump.stem.split("_")[2].lower()
    path = folder / f"{site}.youtube.{first[:10]}.{first[11:19].replace(':', '_')}.pytomo_database.db"
    table = f"pytomo_crawl_{first[:19].replace('-', '_').replace(' ', '_').replace(':', '_')}"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in COLUMNS_2013)})")
    conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in COLUMNS_2013)})", rows)
    conn.close()
    return path


def legacy_source_2013() -> tuple[str, ...]:
    """The 2013 columns as ``pytomo import`` knows them."""
    from pytomo.readers.legacy_source import COLUMNS_2013 as NAMES

    return NAMES
