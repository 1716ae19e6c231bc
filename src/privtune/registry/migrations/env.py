"""Alembic environment: privtune always passes an open connection (store.migrate), never a URL from an ini file."""

from alembic import context

from privtune.registry.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
