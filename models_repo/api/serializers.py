"""Serializers of the Model repository API."""
