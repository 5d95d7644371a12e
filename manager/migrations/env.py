"""Alembic's environment: the manager hands the connection in (``config.attributes``), so
migrations run on the connection the manager already holds, online, or render SQL
offline for a named dialect."""

from __future__ import annotations

from alembic import context

config = context.config

if context.is_offline_mode():
    context.configure(dialect_name=config.attributes["dialect"], literal_binds=True,
                      transactional_ddl=False)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
