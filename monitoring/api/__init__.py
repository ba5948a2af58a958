"""The Monitoring API (filled in by its issue)."""
