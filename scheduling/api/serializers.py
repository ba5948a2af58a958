"""Serializers of the Production scheduling API."""
