"""Sending finished run databases to a collector: the run's identity, the outbox, the HTTP client."""
