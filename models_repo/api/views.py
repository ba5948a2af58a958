"""Views of the Model repository API."""
