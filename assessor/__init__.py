"""Capstone Assessor: assess backend capstones against a rubric and certify the result."""

__version__ = "0.1.0"
