"""selectors of the Data lake part (filled in by its issue)."""
