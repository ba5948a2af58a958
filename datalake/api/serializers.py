"""Serializers of the Data lake API."""
