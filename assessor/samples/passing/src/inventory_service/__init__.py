"""Inventory reservation service: hold stock for a checkout, then confirm, cancel or let the hold expire."""

__version__ = "1.0.0"
API_VERSION = "v1"
