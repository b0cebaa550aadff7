"""Storage of run results: one SQLite database per run."""
