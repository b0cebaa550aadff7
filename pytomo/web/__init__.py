"""The web server: graphs of the RRD files and pages of the run databases, read-only (docs/web.md)."""
