"""The Model repository API (filled in by its issue)."""
