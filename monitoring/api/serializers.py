"""Serializers of the Monitoring API."""
