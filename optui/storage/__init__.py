"""Stores (SQLite, InfluxDB), caches, spool and exports. Never imports Textual."""
