"""selectors of the Production scheduling part (filled in by its issue)."""
