"""Alembic migrations of the cartnet database; run them with :func:`cartnet.store.upgrade`."""
