"""The analyses of a Pytomo Parquet dataset (five, and the verdict's aggregates), with DuckDB (embedded, the
default) or Dask (a cluster).

Every analysis is one specification (``Analysis``): the per-download frame it reads, its group keys and its
aggregates. The frame is defined once, as one DuckDB query over a ``downloads`` relation (and ``run`` for the
volunteer's country), ``frame_select``. DuckDB runs it over ``read_parquet('<root>/<table>/**/*.parquet',
hive_partitioning=true, union_by_name=true)`` and the analysis as SQL over it; Dask reads the same files with
``dask.dataframe.read_parquet`` on a ``distributed`` client and runs the same query on every pandas partition, on
the workers, with an in-memory DuckDB (``frame_partition``); it sums and counts on the workers and takes percentiles
exactly over the collected column. Every column the frame reads is cast to one type first, and a column a file or a
partition lacks is NULL, so both engines see the same frame. Percentiles are linear interpolation between order
statistics in both (DuckDB ``quantile_cont``, pandas ``quantile``), so both give the same numbers.

The RTT of the analyses is the one RTT of a video, ``ping_min_ms``: ``downloads.ping_min_ms``, the smallest RTT to
the cache server (ICMP echo, else TCP connect).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds

from pytomo.errors import UsageError
from pytomo.figures import Aggregate, Figure, aggregates

DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
"""Nothing is downloaded: Parquet is built into DuckDB."""
UNKNOWN_HOUR = "unknown"
"""The hour of a video without a local time (a run that recorded none): never a made-up hour."""


def connect() -> Any:
    """A DuckDB connection as the analyses use it: DUCKDB_CONFIG, and UTC as the session's zone (a UTC timestamp is
    written and truncated in UTC whatever the machine's zone)."""
    import duckdb

    con = duckdb.connect(config=dict(DUCKDB_CONFIG))
    con.execute("SET TimeZone = 'UTC'")
    return con

RTT_BINS = (10.0, 20.0, 50.0, 100.0, 200.0)  # ms: bins [0, 10), [10, 20), ... [200, inf)
CDF_QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)


@dataclass(frozen=True)
class Agg:
    """One aggregate: ``rows`` (count of rows), ``count``/``sum`` (of non-NULL values), ``quantile`` (exact,
    linear), ``nunique``."""

    name: str
    kind: str
    column: str = ""
    q: float = 0.5
    whole: bool = False  # a sum of 0/1 flags: a count, written as an integer

    @property
    def counts(self) -> bool:
        """True for a number of rows or videos (an integer in the tables and their CSV files)."""
        return self.kind in ("rows", "count", "nunique") or self.whole


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    keys: tuple[str, ...]
    aggs: tuple[Agg, ...]
    require: tuple[str, ...] = ()  # rows where these are not NULL
    ratios: tuple[tuple[str, str, str], ...] = ()  # (name, numerator, denominator) computed after
    drop: tuple[str, ...] = ()  # helper columns left out of the table


def _q(column: str, qs: tuple[float, ...], prefix: str = "p") -> tuple[Agg, ...]:
    return tuple(Agg(f"{prefix}{round(q * 100):02d}", "quantile", column, q) for q in qs)


ANALYSES: tuple[Analysis, ...] = (
    Analysis("throughput_cdf", "Throughput CDF per cache-server AS (bit/s)", ("cache_group",),
             (Agg("downloads", "count", "throughput_bps"), Agg("sum_bps", "sum", "throughput_bps"),
              *_q("throughput_bps", CDF_QUANTILES)),
             require=("throughput_bps",), ratios=(("mean_bps", "sum_bps", "downloads"),), drop=("sum_bps",)),
    Analysis("stall_ratio", "Stall ratio per service and country", ("service", "country"),
             (Agg("videos", "rows"), Agg("started", "sum", "started", whole=True),
              Agg("stalled", "sum", "stalled", whole=True), Agg("stall_s", "sum", "stall_s"),
              Agg("played_s", "sum", "played_s"),
              Agg("watched_s", "sum", "watched_s")),
             ratios=(("stalled_share", "stalled", "started"), ("stall_time_ratio", "stall_s", "watched_s")),
             drop=("watched_s",)),
    Analysis("time_to_start", "Time to start playback per service (s)", ("service",),
             (Agg("videos", "rows"), Agg("timed", "sum", "timed", whole=True),
              Agg("started", "sum", "started", whole=True),
              Agg("sum_s", "sum", "time_to_start_s"),
              *_q("time_to_start_s", (0.10, 0.50, 0.90))),
             ratios=(("started_share", "started", "timed"), ("mean_s", "sum_s", "started")),
             drop=("sum_s", "timed")),
    Analysis("rtt_throughput", "RTT against throughput (RTT bins, ms; throughput, bit/s)", ("rtt_bin",),
             (Agg("downloads", "rows"), Agg("sum_rtt_ms", "sum", "rtt_ms"),
              *_q("throughput_bps", (0.25, 0.50, 0.75), "thr_p")),
             require=("rtt_ms", "throughput_bps"), ratios=(("mean_rtt_ms", "sum_rtt_ms", "downloads"),),
             drop=("sum_rtt_ms",)),
    Analysis("hourly", "Median per local hour of the day across runs (throughput, bit/s)", ("hour",),
             (Agg("runs", "nunique", "run_uuid"), Agg("videos", "rows"),
              Agg("median_throughput_bps", "quantile", "throughput_bps", 0.5),
              Agg("median_time_to_start_s", "quantile", "time_to_start_s", 0.5),
              Agg("started", "sum", "started", whole=True), Agg("stalled", "sum", "stalled", whole=True)),
             ratios=(("stalled_share", "stalled", "started"),)),
)
SUMMARISED = ("median", "count", "share_zero")  # the statistics the per-download frame gives (loss needs the probes)


def _summarised() -> list[tuple[Figure, Aggregate]]:
    """The declared aggregates the frame can compute: of a ``downloads`` figure, by a statistic of SUMMARISED."""
    return [(f, a) for f, a in aggregates() if f.table == "downloads" and a.statistic in SUMMARISED]


def aggregates_analysis() -> Analysis:
    """The verdict's aggregates (declared on the figures) per service, one column each, named by its key."""
    aggs: list[Agg] = [Agg("videos", "rows"), Agg("played_n", "sum", "played_timed", whole=True)]
    ratios, drop = [], ["played_n"]
    for _f, a in _summarised():
        if a.statistic == "median":
            aggs.append(Agg(a.key, "quantile", f"agg_{a.key}", 0.5))
        elif a.statistic == "count":
            aggs.append(Agg(a.key, "sum", f"agg_{a.key}", whole=True))
        else:  # share_zero: over videos played with a playout of ours (a window recorded)
            aggs.append(Agg(f"{a.key}_n", "sum", f"agg_{a.key}", whole=True))
            ratios.append((a.key, f"{a.key}_n", "played_n"))
            drop.append(f"{a.key}_n")
    return Analysis("aggregates", "The verdict's aggregates per service (declared in pytomo/figures.py)",
                    ("service",), tuple(aggs), ratios=tuple(ratios), drop=tuple(drop))


def analyses() -> tuple[Analysis, ...]:
    """The five analyses, then the declared aggregates per service."""
    return (*ANALYSES, aggregates_analysis())


def by_name() -> dict[str, Analysis]:
    """Every analysis by its name."""
    return {a.name: a for a in analyses()}


@dataclass
class Layout:
    """Which optional columns the dataset has, and what the analyses say about the ones it lacks."""

    downloads: set[str]
    run: set[str]
    notes: list[str] = field(default_factory=list)
    schemas: dict[str, pa.Schema] = field(default_factory=dict)  # table -> its files' columns and the partitions
    partitions: dict[str, list[str]] = field(default_factory=dict)  # table -> its Hive partition columns

    @property
    def as_column(self) -> bool:
        return "as_number" in self.downloads

    @property
    def country(self) -> str | None:
        """``run.vantage_country`` (the volunteer's), else ``downloads.country`` (the cache server's), else None."""
        if "vantage_country" in self.run:
            return "run.vantage_country"
        if "country" in self.downloads:
            return "downloads.country"
        return None

    @property
    def local_time(self) -> bool:
        return "started_at_local" in self.downloads


def dataset_schema(path: Path) -> tuple[pa.Schema, list[str]]:
    """The columns of a table's Parquet dataset: those of all its files (a column that the files of an older schema
    lack included, as DuckDB's ``union_by_name``), then the Hive partition columns, as strings; and the names of
    these."""
    ds = pds.dataset(path, format="parquet", partitioning="hive")
    parts = list(ds.partitioning.schema.names) if ds.partitioning is not None and ds.partitioning.schema else []
    schemas = [f.physical_schema for f in ds.get_fragments()] or [ds.schema]
    files = pa.unify_schemas(schemas, promote_options="permissive")
    return pa.schema([f for f in files if f.name not in parts] + [pa.field(n, pa.string()) for n in parts]), parts


def layout_of(root: Path) -> Layout:
    """The columns of the ``downloads`` and ``run`` datasets, and the notes on what is absent."""
    def schema(table: str) -> tuple[pa.Schema, list[str]]:
        path = Path(root) / table
        if not path.is_dir():
            raise UsageError(f"{root} is not a Pytomo dataset: no {table}/ in it")
        return dataset_schema(path)

    found = {t: schema(t) for t in ("downloads", "run")}
    schemas = {t: sch for t, (sch, _) in found.items()}
    lay = Layout(set(schemas["downloads"].names), set(schemas["run"].names), schemas=schemas,
                 partitions={t: parts for t, (_, parts) in found.items()})
    lay.notes.append("throughput_cdf: grouped by " + ("the cache server's AS (downloads.as_number)" if lay.as_column
                                                      else "cache-server address: the dataset has no as_number"))
    lay.notes.append("stall_ratio: country is " + (lay.country or "absent from the dataset (shown as 'unknown')"))
    lay.notes.append("hourly: hours are the volunteer's local time (downloads.started_at_local); " + (
        f"a video without one (a run that recorded none) is counted under hour '{UNKNOWN_HOUR}'" if lay.local_time
        else f"the dataset has no local time: every video's hour is '{UNKNOWN_HOUR}'"))
    left = [a.key for f, a in aggregates() if (f, a) not in _summarised()]
    if left:
        lay.notes.append(f"aggregates: {', '.join(left)} not computed: the per-download frame has no RTT probes")
    return lay


# --- the per-download frame, once, as SQL over a relation: read_parquet for DuckDB, a pandas partition for Dask ----

DOWNLOADS_COLUMNS = {
    "run_uuid": "VARCHAR", "service": "VARCHAR", "stream_role": "VARCHAR", "address": "VARCHAR", "host": "VARCHAR",
    "as_number": "BIGINT", "country": "VARCHAR", "avg_throughput_bps": "DOUBLE", "time_to_start_s": "DOUBLE",
    "stall_count": "BIGINT", "stall_total_s": "DOUBLE", "played_s": "DOUBLE", "ping_min_ms": "DOUBLE",
    "started_at_local": "VARCHAR", "window_s": "DOUBLE",
}
"""The ``downloads`` columns the frame reads, and the one type each is cast to (whatever a file or a pandas
partition holds: object strings, nullable or float integers, pyarrow strings, a categorical partition column)."""
RUN_COLUMNS = {"run_uuid": "VARCHAR", "vantage_country": "VARCHAR"}


def downloads_columns() -> dict[str, str]:
    """DOWNLOADS_COLUMNS and the columns of the figures the declared aggregates summarise."""
    extra = {"bytes": "DOUBLE", "live": "BIGINT", **{f.name: "DOUBLE" for f, _a in _summarised()}}
    return {**DOWNLOADS_COLUMNS, **{k: v for k, v in extra.items() if k not in DOWNLOADS_COLUMNS}}


def _aggregate_columns() -> str:
    """The frame's column of each aggregate: the figure where it counts (played, live), or 0/1 to be summed."""
    out = []
    for f, a in _summarised():
        when = [c for c, on in (("coalesce(d.bytes, 0) > 0", a.played_only), ("d.live = 1", a.live_only)) if on]
        col = f"d.{_quoted(f.name)}"
        if a.statistic == "median":
            expr = f"CASE WHEN {' AND '.join(when)} THEN {col} END" if when else col
        elif a.statistic == "count":
            expr = f"CAST({' AND '.join([*when, f'coalesce({col}, 0) > 0'])} AS INTEGER)"
        else:
            expr = f"CAST(coalesce(d.bytes, 0) > 0 AND d.time_to_start_s IS NOT NULL AND {col} = 0 AS INTEGER)"
        out.append(f"{expr} AS agg_{a.key}")
    return "".join(f",\n       {c}" for c in out)


def typed(relation: str, has: Collection[str], types: dict[str, str]) -> str:
    """``relation`` as a subquery of the columns of ``types``, each cast to its type; NULL of that type where the
    relation has no such column (``has``: the columns it has)."""
    cols = ",\n        ".join(f"CAST({_quoted(c) if c in has else 'NULL'} AS {t}) AS {c}" for c, t in types.items())
    return f"(SELECT {cols}\n FROM {relation})"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def frame_select(lay: Layout, downloads: str, run: str | None = None) -> str:
    """The per-download frame (audio rows of a pair left out): the one definition both engines run. ``downloads``
    and ``run`` are ``typed`` relations; without ``run`` the volunteer's country is unknown."""
    group = ("CASE WHEN d.as_number IS NULL THEN 'unknown AS' ELSE 'AS' || CAST(d.as_number AS VARCHAR) END"
             if lay.as_column else "coalesce(d.address, d.host, 'unknown')")
    country = "NULL"
    if lay.country == "run.vantage_country" and run is not None:
        country = "r.vantage_country"
    elif lay.country == "downloads.country":
        country = "d.country"
    hour = ("TRY_CAST(substr(d.started_at_local, 12, 2) AS INTEGER)" if lay.local_time else "NULL")
    bins = " ".join(f"WHEN d.ping_min_ms < {b} THEN '{_bin_label(i)}'" for i, b in enumerate(RTT_BINS))
    join = ("LEFT JOIN (SELECT run_uuid, min(vantage_country) AS vantage_country FROM "
            f"{run} GROUP BY run_uuid) r ON r.run_uuid = d.run_uuid" if country.startswith("r.") else "")
    return f"""SELECT d.run_uuid, d.service,
       {group} AS cache_group,
       coalesce({country}, 'unknown') AS country,
       d.avg_throughput_bps AS throughput_bps,
       d.time_to_start_s,
       CAST(d.time_to_start_s IS NOT NULL AS INTEGER) AS started,
       CAST(coalesce(d.stall_count, 0) > 0 AS INTEGER) AS stalled,
       CASE WHEN d.time_to_start_s IS NOT NULL THEN d.stall_total_s END AS stall_s,
       CASE WHEN d.time_to_start_s IS NOT NULL THEN d.played_s END AS played_s,
       CASE WHEN d.time_to_start_s IS NOT NULL THEN coalesce(d.stall_total_s, 0) + coalesce(d.played_s, 0) END
           AS watched_s,
       d.ping_min_ms AS rtt_ms,
       CASE WHEN d.ping_min_ms IS NULL THEN NULL {bins} ELSE '{_bin_label(len(RTT_BINS))}' END AS rtt_bin,
       coalesce(lpad(CAST({hour} AS VARCHAR), 2, '0'), '{UNKNOWN_HOUR}') AS hour,
       CAST(coalesce(d.bytes, 0) > 0 AS INTEGER) AS played,
       CAST(d.window_s IS NOT NULL AS INTEGER) AS timed,
       CAST(coalesce(d.bytes, 0) > 0 AND d.window_s IS NOT NULL AS INTEGER) AS played_timed{_aggregate_columns()}
FROM {downloads} d {join}
WHERE coalesce(d.stream_role, 'progressive') <> 'audio'"""


def _bin_label(i: int) -> str:
    low = 0.0 if i == 0 else RTT_BINS[i - 1]
    return f"{low:03.0f}-{RTT_BINS[i]:03.0f} ms" if i < len(RTT_BINS) else f"{low:03.0f}+ ms"


def frame_sql(root: Path, lay: Layout) -> str:
    """The per-download frame as a DuckDB query over the dataset's files."""
    base = str(Path(root)).replace("'", "''")
    src = (f"read_parquet('{base}/{{t}}/**/*.parquet', hive_partitioning=true, union_by_name=true, "
           "hive_types_autocast=false)")  # partition values as text, as pyarrow gives them to Dask
    run = typed(src.format(t="run"), lay.run, RUN_COLUMNS) if lay.country == "run.vantage_country" else None
    return frame_select(lay, typed(src.format(t="downloads"), lay.downloads, downloads_columns()), run)


def frame_partition(d: pd.DataFrame, lay: Layout, run: pd.DataFrame | None = None) -> pd.DataFrame:
    """The same per-download frame of a pandas ``downloads`` frame (and ``run``): the query of ``frame_sql`` run by
    an in-memory DuckDB over it (a Dask partition, or its empty ``_meta``)."""
    con = _connection()
    try:
        con.register("downloads", _arrow(d))
        run_sql = None
        if run is not None:
            con.register("run", _arrow(run))
            run_sql = typed("run", set(run.columns), RUN_COLUMNS)
        rel = con.sql(frame_select(lay, typed("downloads", set(d.columns), downloads_columns()), run_sql))
        # through Arrow, so that a column's pandas type follows its SQL type alone, in an empty frame too
        table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # DuckDB >= 1.4, older
        return table.to_pandas()
    finally:
        for name in ("downloads", "run"):
            con.unregister(name)


_local = threading.local()


def _connection() -> Any:
    """This thread's in-memory DuckDB (opening one takes longer than the query of a partition)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = connect()
        con.execute("SET threads = 1")
    return con


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A pandas frame as Arrow: pyarrow types every value of an object column (DuckDB's own pandas scan guesses
    from a sample), and a NaN in it is NULL."""
    return pa.Table.from_pandas(frame, preserve_index=False)


# --- running a specification -------------------------------------------------------------------------------------

def _sql_agg(a: Agg) -> str:
    return {"rows": "count(*)", "count": f"count({a.column})", "sum": f"sum({a.column})",
            "quantile": f"quantile_cont({a.column}, {a.q})", "nunique": f"count(DISTINCT {a.column})"}[a.kind]


def analysis_sql(a: Analysis, frame: str) -> str:
    """One analysis as DuckDB SQL over the per-download frame."""
    keys = ", ".join(a.keys)
    where = " AND ".join(f"{c} IS NOT NULL" for c in a.require) or "TRUE"
    aggs = ",\n       ".join(f"{_sql_agg(g)} AS {g.name}" for g in a.aggs)
    return f"WITH d AS ({frame})\nSELECT {keys},\n       {aggs}\nFROM d WHERE {where}\nGROUP BY {keys} ORDER BY {keys}"


def finish(a: Analysis, table: pd.DataFrame) -> pd.DataFrame:
    """Ratios, helper columns dropped, rows sorted by the keys, plain types: the analysis's table."""
    table = table.copy()
    for name, num, den in a.ratios:
        n, dd = pd.to_numeric(table[num], errors="coerce"), pd.to_numeric(table[den], errors="coerce")
        table[name] = (n / dd).where(dd > 0)
    table = table.drop(columns=list(a.drop)).sort_values(list(a.keys)).reset_index(drop=True)
    counts = {g.name for g in a.aggs if g.counts}
    for col in table.columns:
        if col in a.keys:
            table[col] = table[col].astype(str)
        else:
            table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64" if col in counts else "float64")
    return table


def run_duckdb(root: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The analyses with DuckDB; also returns the notes on absent columns."""
    lay = layout_of(root)
    frame = frame_sql(root, lay)
    con = connect()
    try:
        return {a.name: finish(a, con.execute(analysis_sql(a, frame)).df()) for a in analyses()}, lay.notes
    finally:
        con.close()


def _dask_read(root: Path, table: str, lay: Layout, columns: list[str]) -> Any:
    """A table's columns with ``dask.dataframe.read_parquet``, over the schema of all its files (a column that a
    file lacks is NULL there, as with DuckDB's ``union_by_name``)."""
    import dask.dataframe as dd

    schema = lay.schemas[table]
    partitioning = pds.HivePartitioning(pa.schema([schema.field(n) for n in lay.partitions[table]]))
    return dd.read_parquet(str(Path(root) / table), columns=columns,
                           dataset={"partitioning": partitioning, "schema": schema})


def _dask_frame(root: Path, lay: Layout) -> Any:
    columns = sorted(lay.downloads & set(downloads_columns()))
    downloads = _dask_read(root, "downloads", lay, columns)
    run = None
    if lay.country == "run.vantage_country":
        run = _dask_read(root, "run", lay, sorted(RUN_COLUMNS)).compute()
    meta = frame_partition(downloads._meta, lay, run)
    return downloads.map_partitions(frame_partition, lay, run, meta=meta)


def _dask_one(a: Analysis, frame: Any) -> pd.DataFrame:
    import dask

    keys = list(a.keys)
    for col in a.require:
        frame = frame[~frame[col].isna()]
    frame = frame.persist()
    grouped = frame.groupby(keys, dropna=False)  # a NULL key (a service unknown) is a group, as in SQL
    lazy, names = [], []
    for g in a.aggs:  # sums and counts on the workers, all in one pass
        if g.kind == "rows":
            lazy.append(grouped.size())
        elif g.kind == "nunique":
            lazy.append(grouped[g.column].nunique())
        elif g.kind in ("count", "sum"):
            lazy.append(getattr(grouped[g.column], g.kind)())
        else:
            continue
        names.append(g.name)
    sum_columns = [g.column for g in a.aggs if g.kind == "sum"]
    quantiles = [g for g in a.aggs if g.kind == "quantile"]
    collect = frame[keys + sorted({g.column for g in quantiles})] if quantiles else frame[keys].head(0, compute=False)
    *results, counts, collected = dask.compute(*lazy, grouped[sum_columns or ["run_uuid"]].count(), collect)
    parts = [r.rename(n) for r, n in zip(results, names)]
    for g in quantiles:  # exact, over the collected column (as DuckDB's quantile_cont)
        parts.append(collected.groupby(keys, dropna=False)[g.column].quantile(g.q).rename(g.name))
    sums = {g.name for g in a.aggs if g.kind == "sum"}
    table = pd.concat(parts, axis=1)
    for g in a.aggs:  # a sum over no value is NULL, as in SQL
        if g.name in sums:
            table[g.name] = table[g.name].where(counts[g.column].reindex(table.index) > 0)
    return finish(a, table[[g.name for g in a.aggs]].reset_index())


def run_dask(root: Path, scheduler: str | None = None,
             cluster_factory: Callable[[], Any] | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The analyses with Dask on a ``distributed`` client: ``scheduler`` an address, else a LocalCluster."""
    from distributed import Client, LocalCluster

    lay = layout_of(root)
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = cluster_factory() if cluster_factory else LocalCluster(n_workers=2, threads_per_worker=1,
                                                                         processes=True, dashboard_address=None,
                                                                         silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        frame = _dask_frame(root, lay)
        return {a.name: _dask_one(a, frame) for a in analyses()}, lay.notes
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --- output ------------------------------------------------------------------------------------------------------

def text_table(table: pd.DataFrame) -> str:
    """A table for the terminal."""
    def cell(v: Any) -> str:
        if v is None or v is pd.NA or isinstance(v, float) and pd.isna(v):
            return ""
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    rows = [list(map(str, table.columns))] + [[cell(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)


def plot(name: str, table: pd.DataFrame, path: Path) -> None:
    """A PNG of one analysis's table (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        _draw(name, table, ax)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


THROUGHPUT_AXIS = "throughput (bit/s)"
"""The throughput axes say bit/s, as the titles and tables do; their ticks carry the SI prefix (5 Mbit/s)."""


def _bps_axis(axis: Any) -> None:
    from matplotlib.ticker import EngFormatter

    axis.set_major_formatter(EngFormatter(unit="bit/s"))


def _draw(name: str, t: pd.DataFrame, ax: Any) -> None:
    ax.set_title(by_name()[name].title)
    if t.empty:
        ax.text(0.5, 0.5, "no data", ha="center")
        return
    if name == "throughput_cdf":
        cols = [f"p{round(q * 100):02d}" for q in CDF_QUANTILES]
        for _, row in t.sort_values("downloads", ascending=False).head(10).iterrows():
            ax.step([row[c] for c in cols], CDF_QUANTILES, where="post", label=row["cache_group"])
        ax.set_xlabel(THROUGHPUT_AXIS)
        _bps_axis(ax.xaxis)
        ax.set_ylabel("CDF")
        ax.legend(fontsize=7)
    elif name == "stall_ratio":
        ax.bar([f"{s}\n{c}" for s, c in zip(t["service"], t["country"])], t["stalled_share"].fillna(0))
        ax.set_ylabel("share of started videos that stalled")
    elif name == "time_to_start":
        ax.errorbar(t["service"], t["p50"], yerr=[t["p50"] - t["p10"], t["p90"] - t["p50"]], fmt="o")
        ax.set_ylabel("time to start (s): p10, median, p90")
    elif name == "rtt_throughput":
        ax.errorbar(t["rtt_bin"], t["thr_p50"], yerr=[t["thr_p50"] - t["thr_p25"], t["thr_p75"] - t["thr_p50"]],
                    fmt="o")
        ax.set_xlabel("RTT (ms)")
        ax.set_ylabel(f"{THROUGHPUT_AXIS}: median, p25-p75")
        _bps_axis(ax.yaxis)
    elif name == "aggregates":
        ax.axis("off")
        shown = t.drop(columns=["service"])
        ax.table(cellText=[[f"{v:.4g}" if pd.notna(v) else "" for v in row] for row in shown.itertuples(index=False)],
                 rowLabels=list(t["service"]), colLabels=list(shown.columns), loc="center", fontsize=7)
    else:
        known = t[t["hour"] != UNKNOWN_HOUR]
        ax.plot(known["hour"].astype(int), known["median_throughput_bps"], marker="o")
        ax.set_xlabel("local hour of the day")
        ax.set_ylabel(f"median {THROUGHPUT_AXIS}")
        _bps_axis(ax.yaxis)
        unknown = t.loc[t["hour"] == UNKNOWN_HOUR, "videos"].sum()
        if unknown:
            ax.text(0.01, 0.99, f"{unknown} videos of unknown hour (no local time) not drawn",
                    transform=ax.transAxes, va="top", fontsize=7)


def write_outputs(tables: dict[str, pd.DataFrame], notes: list[str], out: Path | None) -> str:
    """Every table printed (and, with ``out``, as CSV and PNG there)."""
    lines = [f"note: {n}" for n in notes]
    for a in analyses():
        lines += ["", f"== {a.name}: {a.title}", text_table(tables[a.name])]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            tables[a.name].to_csv(out / f"{a.name}.csv", index=False)
            plot(a.name, tables[a.name], out / f"{a.name}.png")
    return "\n".join(lines)


def compare(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame], rtol: float = 1e-9) -> list[str]:
    """The differences between two engines' tables (empty: the same numbers)."""
    wrong = []
    for a in analyses():
        x, y = left[a.name], right[a.name]
        try:
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=rtol, atol=1e-9)
        except AssertionError as exc:
            wrong.append(f"{a.name}: {exc}")
    return wrong
