"""Alembic's script folder, installed as the package ``monitor.store.migrations`` (setup.py)."""
