"""AS and country of the addresses a run reached, from the collector's own IP databases (``--ip-db``), at ingest.

Every table of the dataset with an ``address`` column (the cache servers of ``downloads``, the redirections' hosts
of ``hops``, ``dns_answers``, ``rtt_probes`` and ``rtt_samples``) gets ``as_number``, ``as_name``, ``country`` and
``as_source``. A value the volunteer's file has (the crawler's own ``--ip-db``, ``downloads`` only) is kept: the
collector fills a row only when its three fields are all NULL, and ``as_source`` says whose they are
(``volunteer``, ``collector``, or NULL when neither knew). The uploader's own address is never among them: it is
looked up apart (``vantage_*`` of the run row) and not kept. The run row gets the databases' names and build time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pytomo.engine.vantage import Vantage

ADDRESS_TABLES = ("downloads", "hops", "dns_answers", "rtt_probes", "rtt_samples")
FIELDS: tuple[tuple[str, pa.DataType], ...] = (("as_number", pa.int64()), ("as_name", pa.string()),
                                               ("country", pa.string()))
SOURCE = "as_source"
DESCRIPTIONS = {
    "as_number": "AS number of the address: the volunteer's --ip-db, else the collector's IP database (as_source)",
    "as_name": "the AS's name (organisation) in that database",
    "country": "country of the address (ISO 3166-1 alpha-2) in that database",
    SOURCE: "whose IP database gave as_number, as_name and country: volunteer (the crawler's --ip-db), collector "
            "(the collector's at ingest, named by run.collector_ip_db); NULL: neither knew the address",
    "collector_ip_db": "the collector's IP databases that gave the addresses' AS and country at ingest: file (type, "
                       "build date), '; ' between files; NULL: the collector had none",
    "collector_ip_db_built": "when the oldest of the collector's IP databases was built (UTC)",
}
"""Descriptions of the columns the collector adds, as the export describes its own (field metadata)."""


@dataclass(frozen=True)
class IpDatabases:
    """What the run row records of the collector's IP databases: their names and when the oldest was built."""

    names: str | None = None  # "GeoLite2-ASN.mmdb (GeoLite2-ASN, built 2026-12-01)", "; " between files
    built: datetime | None = None  # the oldest build among them (UTC)


class AddressLookup:
    """The collector's IP databases, opened once per process; ``annotate`` fills a run's tables."""

    def __init__(self, paths: Iterable[str | Path] = ()) -> None:
        files = [Path(p) for p in paths]
        self.vantage = Vantage(files, lookup_private=True)  # the lab's cache servers are on loopback
        described, builds = [], []
        for path, reader in zip(files, self.vantage.readers, strict=True):
            meta = reader.metadata()
            built = datetime.fromtimestamp(int(meta.build_epoch), UTC)
            builds.append(built)
            described.append(f"{path.name} ({meta.database_type}, built {built.date().isoformat()})")
        self.databases = IpDatabases("; ".join(described) or None, min(builds) if builds else None)

    def close(self) -> None:
        """Close the databases."""
        self.vantage.close()

    def annotate(self, tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
        """The run's tables with the AS and country of their addresses (see the module's docstring)."""
        out = dict(tables)
        for name in ADDRESS_TABLES:
            if name in out and "address" in out[name].column_names:
                out[name] = self._table(out[name])
        return out

    def _table(self, data: pa.Table) -> pa.Table:
        """One table's rows: the volunteer's fields kept where any is set, else the collector's (a few thousand rows
        at most a run: Python lists cost less here than a dozen Arrow kernels)."""
        addresses = data.column("address").to_pylist()
        found = {address: self.vantage.lookup(address) for address in set(addresses)}
        ours = {name: data.column(name).to_pylist() if name in data.column_names else [None] * data.num_rows
                for name, _ in FIELDS}
        had = [any(v is not None for v in row) for row in zip(*ours.values())] if data.num_rows else []
        theirs = {name: [getattr(found[a], name) for a in addresses] for name, _ in FIELDS}
        for name, kind in FIELDS:
            kept = [mine if h else other for h, mine, other in zip(had, ours[name], theirs[name])]
            data = put(data, name, pa.array(kept, data.schema.field(name).type if name in data.column_names
                                             else kind))
        source = ["volunteer" if h else ("collector" if any(theirs[n][i] is not None for n, _ in FIELDS) else None)
                  for i, h in enumerate(had)]
        return put(data, SOURCE, pa.array(source, pa.string()))


def put(data: pa.Table, name: str, values: Any) -> pa.Table:
    """``data`` with column ``name`` set (replaced in place, or appended), its field's metadata kept and its
    description the collector's when DESCRIPTIONS has one."""
    meta = dict(data.schema.field(name).metadata or {}) if name in data.column_names else {}
    if name in DESCRIPTIONS:
        meta[b"description"] = DESCRIPTIONS[name].encode("utf-8")
    field = pa.field(name, values.type, metadata=meta or None)
    if name in data.column_names:
        return data.set_column(data.column_names.index(name), field, values)
    return data.append_column(field, values)
