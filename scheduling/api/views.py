"""Views of the Production scheduling API."""
