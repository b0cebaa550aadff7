"""RRD time series of the measured videos, kept by the crawler and rebuilt from any run database (docs/rrd.md)."""
