"""One stored run into the collector's Parquet dataset: its tables, the uploader's network and the addresses' AS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytomo.collector.addresses import AddressLookup, IpDatabases, put
from pytomo.collector.origin import Origin


def ingest(db: Path, dataset: Path, origin: Origin, addresses: AddressLookup | None = None) -> IpDatabases:
    """Write the run of ``db`` into ``dataset`` (pytomo/dataset/parquet.py: each file atomically, ``run`` last),
    with the uploader's AS and country on its run row and, from ``addresses``, the AS and country of the addresses
    it reached; the IP databases used (recorded on the run row too)."""
    from pytomo.dataset.parquet import write_run
    from pytomo.readers.tables import tables_of

    tables = tables_of(db)
    databases = IpDatabases()
    if addresses is not None:
        tables = addresses.annotate(tables)
        databases = addresses.databases
    tables["run"] = annotate(tables["run"], origin, databases)
    write_run(tables, dataset)
    return databases


def annotate(run: Any, origin: Origin, databases: IpDatabases | None = None) -> Any:
    """The ``run`` table with ``vantage_as_number``, ``vantage_country`` and ``vantage_problem`` set from the
    uploader's network, and ``collector_ip_db`` and ``collector_ip_db_built`` naming the collector's IP databases."""
    import pyarrow as pa

    databases = databases or IpDatabases()
    values = {"vantage_as_number": (origin.asn, pa.int64()), "vantage_country": (origin.country, pa.string()),
              "vantage_problem": (origin.problem, pa.string()),
              "collector_ip_db": (databases.names, pa.string()),
              "collector_ip_db_built": (databases.built, pa.timestamp("us", tz="UTC"))}
    for name, (value, kind) in values.items():
        if name in run.column_names:
            kind = run.schema.field(name).type
        run = put(run, name, pa.array([value] * run.num_rows, kind))
    return run
