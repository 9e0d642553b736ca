"""Offline sync for workers' phones, wire-compatible with WatermelonDB (docs/sync.md)."""
