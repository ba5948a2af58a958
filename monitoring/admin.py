"""admin of the Monitoring part (filled in by its issue)."""
