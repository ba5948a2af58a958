"""Views of the Data lake API."""
