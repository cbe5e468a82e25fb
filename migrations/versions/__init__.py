"""The migration revisions, oldest first (Alembic reads them by path)."""
