"""The engine: a repository in, a scored report out (no database, no web)."""
