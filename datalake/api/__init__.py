"""The Data lake API (filled in by its issue)."""
