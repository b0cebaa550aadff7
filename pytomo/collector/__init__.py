"""The collector: receives run databases from volunteers, checks them, stores each once and ingests it."""
