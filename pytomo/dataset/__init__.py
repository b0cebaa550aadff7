"""The run databases as a dataset: Hive-partitioned Parquet (``parquet``) and the first analyses over it
(``analyses``, with DuckDB embedded or Dask on a cluster)."""
