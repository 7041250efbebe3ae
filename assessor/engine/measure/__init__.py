"""Measurements taken from a checkout: sources, complexity, artifacts, test runs."""
