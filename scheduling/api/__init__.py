"""The Production scheduling API (filled in by its issue)."""
