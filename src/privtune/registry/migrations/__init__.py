"""Alembic migrations of the registry schema; run automatically by store._engine (see store.py)."""
