"""tasks of the Model repository part (filled in by its issue)."""
