"""Views of the Monitoring API."""
